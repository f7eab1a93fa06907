/**
 * Thread identity, re-exported so that code outside backends/ never imports worker_threads itself,
 * and a record of which threads of this OS process have ended.
 *
 * The record is one word per thread, at `threadId % LIFELINES`: the thread's id from its launch,
 * minus it once the thread has ended, however it ended (the thread that launched it sees its
 * `exit`). It lives in a SharedArrayBuffer made by the first thread that launches one and handed to
 * every thread launched from there, so they all read the same record. A thread it does not know
 * (launched elsewhere, or whose word a much later thread took) counts as running: a reader may then
 * wait for it, but never takes a running thread for an ended one.
 */
import { threadId } from "node:worker_threads";

export { isMainThread, threadId } from "node:worker_threads";

const LIFELINES = 65_536;
let lifelines: Int32Array | undefined;

/** The record, to hand to a thread being launched (made on first use). */
export function threadLifelines(): SharedArrayBuffer {
  lifelines ??= new Int32Array(new SharedArrayBuffer(LIFELINES * 4));
  return lifelines.buffer as SharedArrayBuffer;
}

/** In a thread just launched: uses the record its launcher handed it. */
export function adoptThreadLifelines(buffer: SharedArrayBuffer): void {
  lifelines = new Int32Array(buffer);
}

/** The launcher marks thread `id` running (before it runs any code)... */
export function threadLaunched(id: number): void {
  Atomics.store(lifelines!, id % LIFELINES, id);
}

/** ...and ended, once its `exit` fires. */
export function threadExited(id: number): void {
  Atomics.compareExchange(lifelines!, id % LIFELINES, id, -id);
}

/** True only when thread `id` of this OS process is known to have ended. */
export function threadHasEnded(id: number): boolean {
  if (id === threadId || !lifelines) return false;
  return Atomics.load(lifelines, id % LIFELINES) === -id;
}
