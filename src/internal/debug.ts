/** Tracing: `NODE_DEBUG=multiprocessing` prints what the library does, with a millisecond clock. */
import { debuglog } from "node:util";
import { runtime } from "./runtime.js";

const log = debuglog("multiprocessing");

/** Writes a trace line when NODE_DEBUG includes "multiprocessing". */
export function trace(message: string): void {
  if (log.enabled) log(`${(performance.timeOrigin + performance.now()).toFixed(1)} ${runtime.name}: ${message}`);
}
