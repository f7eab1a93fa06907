// The task module that piscina and tinypool load: the same functions as ours (tasks-min.ts).
export { cpuLoop, identity } from "../tasks-min.js";
export default function identityDefault<T>(x: T): T {
  return x;
}
