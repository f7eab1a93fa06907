/**
 * Node.js's on-disk cache of compiled code, for what a child loads after its entry script: the rest
 * of the library's bundle, tsx, and the program's own modules, which a child compiles again at every
 * start otherwise (a pool of 4 on Node.js 24 under tsx reaches its first result ~8% sooner with it).
 * Node.js 22.1 and later have it (a no-op elsewhere); it keeps its files in `node-compile-cache`
 * under the system's temporary folder, checks every entry against the source's hash, and
 * `NODE_DISABLE_COMPILE_CACHE=1` turns it off. A child's entry script turns it on
 * (`module.enableCompileCache()`) before it imports anything of the library's.
 */
import * as nodeModule from "node:module";

const api = nodeModule as { flushCompileCache?: () => void };
let saved = false;

/**
 * Writes what this child has compiled so far to the cache, the first time only. Node.js writes it
 * when the process exits, and a pool's workers are often killed instead (`terminate`), so a worker
 * saves it once it has loaded its first task's module (Node.js 22.10 and later).
 */
export function saveCompileCacheOnce(): void {
  if (saved) return;
  saved = true;
  api.flushCompileCache?.();
}
