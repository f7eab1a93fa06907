/**
 * Which engine runs a start method's pools: the method's own (a method that offers pools only), or
 * `WorkerSet` over the method's backend (local child processes or worker threads).
 */
import type { EngineOptions, PoolEngine } from "../internal/pool/engine.js";
import { startMethod } from "./registry.js";
import type { StartMethod } from "../internal/runtime.js";
import { WorkerSet } from "../internal/pool/worker-set.js";

/** A new engine for one Pool or executor of `method`. */
export function engineFor(method: StartMethod, options: EngineOptions): PoolEngine {
  const entry = startMethod(method);
  if (entry.engine) return entry.engine(options);
  return new WorkerSet({ ...options, backend: entry.backend! });
}
