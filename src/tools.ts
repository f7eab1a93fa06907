/**
 * What the command-line tools (`demo`, `bench`) take from the library besides its public surface.
 * A module of its own so that the build can bundle it with the library, as it does `index.ts`
 * (dist/tools.js forwards to dist/bundle/tools.js): the tools then share the library's one copy of
 * every module, and the package ships no per-module copy of the library.
 */
export { ProgressBar, ProgressLine, clock } from "./internal/progress.js";
export { NO_REDIS_SERVER, type LocalCluster, startLocalCluster, stopOnSignal } from "./backends/local-cluster.js";
export { findRedisServer } from "./backends/redis-server.js";
