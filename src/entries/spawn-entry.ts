/**
 * Entry script of a "spawn" child: it turns on Node.js's compile cache (compile-cache.ts) and only
 * then imports the child itself (spawn-child.ts), so that the child loads from the cache. It imports
 * nothing of the library's statically: what it did would be compiled before the cache is on.
 */
import * as nodeModule from "node:module";

(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { runSpawnChild } = await import("./spawn-child.js");
await runSpawnChild();
