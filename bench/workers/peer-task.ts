// The task module that piscina and tinypool load: the same functions as ours (tasks-min.ts, workload-tasks.ts).
export { cpuLoop, identity } from "../tasks-min.js";
export { hashAndGzip, parseAndReduce } from "../workload-tasks.js";
export default function identityDefault<T>(x: T): T {
  return x;
}
