/** Tracing: `NODE_DEBUG=multiprocessing` prints what the library does, with a millisecond clock. */
import { createRequire } from "node:module";
import { runtime } from "./runtime.js";

// node:util (for debuglog) loads parts of Node a child otherwise never needs (argument parsing,
// MIME types): it is loaded only when tracing is on, which NODE_DEBUG says as debuglog reads it.
let log: ((message: string) => void) | null | undefined;

function logger(): ((message: string) => void) | null {
  if (log === undefined) {
    const on = (process.env.NODE_DEBUG ?? "").split(/[\s,]+/).some((pattern) => {
      if (!pattern) return false;
      const source = pattern.replace(/[|\\{}()[\]^$+?.]/g, "\\$&").replaceAll("*", ".*");
      return new RegExp(`^${source}$`, "i").test("multiprocessing");
    });
    const util = on ? (createRequire(import.meta.url)("node:util") as typeof import("node:util")) : undefined;
    log = util ? util.debuglog("multiprocessing") : null;
  }
  return log;
}

/** Writes a trace line when NODE_DEBUG includes "multiprocessing". */
export function trace(message: string): void {
  const write = logger();
  if (write) write(`${(performance.timeOrigin + performance.now()).toFixed(1)} ${runtime.name}: ${message}`);
}
