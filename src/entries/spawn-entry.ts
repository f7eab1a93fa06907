/**
 * Entry script of a "spawn" child: the child itself (spawn-child.ts) is imported once Node.js's
 * compile cache is on, so that it loads from the cache.
 */
import { useCompileCache } from "./compile-cache.js";

useCompileCache();
await import("./spawn-child.js");
