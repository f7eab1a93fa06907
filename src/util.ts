/** Small public helpers. */
import { availableParallelism } from "node:os";

/** The number of CPUs this process may use (`os.availableParallelism()`), like `os.process_cpu_count()`. */
export function cpuCount(): number {
  return availableParallelism();
}

/** Options of every blocking operation: `{ block, timeout, signal }`. */
export interface WaitOptions {
  /** Wait (default true). With `false`, `timeout` is ignored. */
  block?: boolean;
  /** Give up after this many milliseconds. */
  timeout?: number;
  /** Give up when this signal aborts. */
  signal?: AbortSignal;
}
