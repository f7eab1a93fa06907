/**
 * The interfaces behind the primitives of synchronize.ts: where their state lives and how a process
 * reaches it.
 *
 *   Atomics (atomics.ts)  words in shared memory, changed with atomic operations, waited on
 *                              through a futex-style wait/wake
 *   remote  (remote.ts)   an object held by an agent server (no shared memory: the spawn start method
 *                              without the native addon); every operation is one call
 *
 * The public classes validate arguments and pick a flavor; a flavor takes checked arguments.
 *
 * A blocking operation of the Atomics flavor is written once, as a wait loop: a generator that tries,
 * and yields a `Sleep` when it must wait. `runSync` sleeps by blocking the thread, `runAsync` by
 * awaiting, so the blocking call and its promise twin cannot drift apart.
 */
import type { Transport } from "../wire/codec.js";
import type { Waiter } from "../shm/shared-memory.js";

/** The four primitives that are a SemLock. */
export type SemLockKind = "Lock" | "RLock" | "Semaphore" | "BoundedSemaphore";

/** Lock, RLock, Semaphore and BoundedSemaphore. */
export interface SemLockFlavor {
  acquireSync(block: boolean, timeout: number | undefined): boolean;
  acquire(block: boolean, timeout: number | undefined, signal: AbortSignal | undefined): Promise<boolean>;
  release(): void;
  /** The free permits now: 0 or 1 for a lock. */
  value(): number;
  reduce(transport: Transport): unknown;
  /** For `inspect`: the state, seen from here. */
  describe(): string;
}

export interface EventFlavor {
  isSet(): boolean;
  set(): void;
  clear(): void;
  wait(timeout: number | undefined): Promise<boolean>;
  waitSync(timeout: number | undefined): boolean;
  reduce(transport: Transport): unknown;
}

/** A condition's own state; its lock is the public one the Condition holds. */
export interface ConditionFlavor {
  wait(timeout: number | undefined): Promise<boolean>;
  waitSync(timeout: number | undefined): boolean;
  notify(n: number): void;
  notifyAll(): void;
  reduce(transport: Transport): unknown;
}

export interface BarrierFlavor {
  /** Waits for every party; the last to arrive runs `action` before any party is released. */
  wait(timeout: number | undefined, action: (() => unknown) | undefined): Promise<number>;
  nWaiting(): number;
  broken(): boolean;
  abort(): void;
  reset(): void;
  reduce(transport: Transport): unknown;
}

/** One sleep of a wait loop: while `view[index]` holds `expected`, for at most `timeout` ms. */
export interface Sleep {
  waiter: Waiter;
  view: Int32Array;
  index: number;
  expected: number;
  timeout: number;
}

/** A wait loop: it yields each time it must sleep, and returns its result. */
export type WaitLoop<R> = Generator<Sleep, R, void>;

/** Runs a wait loop, blocking this thread (and its event loop) in each sleep. */
export function runSync<R>(loop: WaitLoop<R>): R {
  for (let step = loop.next(); ; step = loop.next()) {
    if (step.done) return step.value;
    const { waiter, view, index, expected, timeout } = step.value;
    waiter.wait(view, index, expected, timeout);
  }
}

/**
 * Runs a wait loop without blocking the event loop. On abort the loop is ended (its `finally`
 * blocks run) and the promise rejects with the signal's reason, having taken nothing.
 */
export async function runAsync<R>(loop: WaitLoop<R>, signal?: AbortSignal): Promise<R> {
  for (let step = loop.next(); ; step = loop.next()) {
    if (step.done) return step.value;
    if (signal?.aborted) {
      loop.return(undefined as R);
      throw signal.reason;
    }
    const { waiter, view, index, expected, timeout } = step.value;
    // a sleep is never longer than 1 s, so an abort is noticed within that even mid-sleep
    await waiter.waitAsync(view, index, expected, signal ? Math.min(timeout, 1000) : timeout);
  }
}
