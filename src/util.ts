/** Small public helpers. */
import { availableParallelism } from "node:os";

/** The number of CPUs this process may use (`os.availableParallelism()`), like `os.process_cpu_count()`. */
export function cpuCount(): number {
  return availableParallelism();
}
