/**
 * Entry script of a "thread" child: it turns on Node.js's compile cache (compile-cache.ts) and only
 * then imports the child itself (thread-child.ts), so that the child loads from the cache. It imports
 * nothing of the library's statically: what it did would be compiled before the cache is on.
 */
import * as nodeModule from "node:module";

(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { runThreadChild } = await import("./thread-child.js");
runThreadChild();
