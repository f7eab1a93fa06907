/**
 * The pool workers this process runs as its children, as Python lists them in `active_children()`:
 * a local engine adds each worker it starts and removes it once it has exited.
 */
import type { RunningChild } from "./backend.js";
import type { StartMethod } from "../runtime.js";

/** One pool worker: a child a local engine started. */
export interface PoolChild {
  readonly name: string;
  readonly method: StartMethod;
  readonly child: RunningChild;
}

/** The live pool workers of every pool and executor of this process, oldest first. */
export const poolChildren = new Set<PoolChild>();
