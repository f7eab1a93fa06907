/**
 * What a new child inherits: the Node.js flags of the OS process (so loaders such as tsx carry over)
 * and, for worker threads, the tsx API to register. A worker thread's own `process.execArgv` lacks
 * the loader flags, so it takes these values from its parent instead (see thread-entry.ts).
 */
export const launchEnvironment = {
  /** The OS process's Node.js flags. */
  execArgv: [...process.execArgv],
  /** URL of tsx's ESM API when the program runs under tsx (detected lazily), or null when not. */
  tsxApi: undefined as string | null | undefined,
};
