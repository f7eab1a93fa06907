/**
 * Entry script of a "thread" child: the child itself (thread-child.ts) is imported once Node.js's
 * compile cache is on in this thread, so that it loads from the cache.
 */
import { useCompileCache } from "./compile-cache.js";

useCompileCache();
await import("./thread-child.js");
