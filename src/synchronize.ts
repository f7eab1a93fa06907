/**
 * Locks, semaphores, events, conditions and barriers shared by processes and threads.
 *
 * Every primitive is built on one base, `SemLock`: Lock, RLock, Semaphore and BoundedSemaphore are
 * SemLocks; Condition, Event and Barrier are built from SemLocks and a few more words each.
 *
 * Each primitive has two flavors behind one interface (internal/sync/flavor.ts), as queues do:
 *
 *   Atomics (internal/sync/atomics.ts)  words in shared memory, changed with atomic operations
 *   remote  (internal/sync/remote.ts)   an object on the fallback's server, when there is no shared memory
 *                                       (the spawn start method with no native addon)
 *
 * The classes here validate arguments at the public edge, pick a flavor, and delegate. An object
 * that arrives from another process is rebuilt one way: its rebuilder makes the flavor from what
 * was sent and calls the public constructor through an `Arrival`.
 */
import { inspect } from "node:util";
import { Arrival } from "./internal/arrival.js";
import { type Reduced, type Transport, reduce, registerRebuilder } from "./internal/wire/codec.js";
import { needsFallback } from "./internal/manager/fallback.js";
import { memoryOf, resolveMethod } from "./backends/registry.js";
import type { StartMethod } from "./internal/runtime.js";
import {
  type AtomicBarrierState,
  type AtomicSemLockState,
  AtomicBarrier,
  AtomicCondition,
  AtomicEvent,
  AtomicSemLock,
} from "./internal/sync/atomics.js";
import {
  type RemoteState,
  RemoteBarrier,
  RemoteCondition,
  RemoteEvent,
  RemoteSemLock,
  isRemoteState,
} from "./internal/sync/remote.js";
import type {
  BarrierFlavor,
  ConditionFlavor,
  EventFlavor,
  SemLockFlavor,
  SemLockKind,
} from "./internal/sync/flavor.js";
import type { BlockRef } from "./internal/shm/shared-memory.js";
import { checkInteger, checkOptionNames, checkTimeout, checkWaitOptions, optionNames } from "./internal/validate.js";
import type { WaitOptions } from "./util.js";
import { deadlineFor } from "./internal/waitlist.js";
import { type CodeRef, codeRef, resolveCode } from "./internal/reduction.js";

/** Options of a blocking acquire: on timeout it resolves false; on abort it rejects, acquiring nothing. */
export type AcquireOptions = WaitOptions;

/** Options of constructors: which start method's memory to use. */
export interface PrimitiveOptions {
  /** The start method of the processes that will share it (default: the global one, see `setStartMethod`). */
  context?:
    | StartMethod
    | {
        /** The start method, as a {@link Context} carries it. */
        readonly startMethod: StartMethod;
      };
}

/** @internal The names of `PrimitiveOptions`. */
export const primitiveOptionNames = optionNames<PrimitiveOptions>({ context: true });

const FOREVER = { block: true, timeout: undefined } as const;

function methodOf(options: PrimitiveOptions, what: string): StartMethod {
  return resolveMethod(options, "primitives", what);
}

const semLockArrival = new Arrival<SemLockFlavor>();
let flavorOf: (lock: SemLock) => SemLockFlavor;

/** The base primitive: a counting semaphore, optionally owned (a lock) and recursive (an RLock). */
export class SemLock {
  readonly #kind: SemLockKind;
  readonly #flavor: SemLockFlavor;

  static {
    flavorOf = (lock) => lock.#flavor;
  }

  /** Makes `value` permits for the start method `options.context`; the subclass names the kind. */
  protected constructor(value: number, options: PrimitiveOptions) {
    const kind = kindOf(new.target);
    this.#kind = kind;
    const arrived = semLockArrival.take();
    if (arrived) {
      this.#flavor = arrived;
      return;
    }
    checkOptionNames(options, primitiveOptionNames, `new ${kind}()`);
    const method = methodOf(options, kind);
    const memory = memoryOf(method);
    const max = kind === "BoundedSemaphore" ? value : kind === "Semaphore" ? 0x7fffffff : 1;
    this.#flavor = needsFallback(memory)
      ? new RemoteSemLock(kind, value)
      : AtomicSemLock.create(kind, value, max, memory);
  }

  /**
   * Acquires, blocking this thread (and its event loop) until available. Returns true once
   * acquired, false when `block: false` finds it taken or `timeout` ms pass.
   */
  acquireSync(options?: AcquireOptions): boolean {
    const { block, timeout } = options === undefined ? FOREVER : checkWaitOptions(options, "acquireSync()");
    return this.#flavor.acquireSync(block, timeout);
  }

  /** Acquires without blocking the event loop; resolves true once acquired, false on timeout. */
  acquire(options?: AcquireOptions): Promise<boolean> {
    if (options === undefined) return this.#flavor.acquire(true, undefined, undefined);
    try {
      const { block, timeout, signal } = checkWaitOptions(options, "acquire()");
      return this.#flavor.acquire(block, timeout, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Releases once. An RLock must be released by its owner; a Lock by anyone, once per acquire. */
  release(): void {
    this.#flavor.release();
  }

  /** Runs `fn` holding the lock (Python's `with lock:`), releasing it however `fn` ends. */
  async withLock<R>(fn: () => R): Promise<Awaited<R>> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** @internal Sends the primitive to another process, where it is the same one (same count, same owner). */
  [reduce](transport: Transport): Reduced {
    return { kind: "mpts.SemLock", state: { kind: this.#kind, flavor: this.#flavor.reduce(transport) } };
  }

  /** Shows the counter and, for a lock, whether this process or thread owns it. */
  [inspect.custom](): string {
    return `${this.#kind} { ${this.#flavor.describe()} }`;
  }
}

function kindOf(target: Function): SemLockKind {
  for (const [cls, kind] of [
    [RLock, "RLock"],
    [Lock, "Lock"],
    [BoundedSemaphore, "BoundedSemaphore"],
  ] as const) {
    if (target === cls || target.prototype instanceof cls) return kind;
  }
  return "Semaphore";
}

registerRebuilder("mpts.SemLock", (state) => {
  const s = state as { kind: SemLockKind; flavor: RemoteState | AtomicSemLockState };
  const flavor = isRemoteState(s.flavor)
    ? new RemoteSemLock(s.kind, s.flavor.remote)
    : AtomicSemLock.attach(s.kind, s.flavor);
  const cls = { Lock, RLock, Semaphore, BoundedSemaphore }[s.kind];
  return semLockArrival.with(flavor, () => new cls());
});

/**
 * A lock shared by processes and threads, like Python's `multiprocessing.Lock`. Any process may
 * release it (it is a semaphore of one); `withLock(fn)` is Python's `with lock:`.
 */
export class Lock extends SemLock {
  constructor(options: PrimitiveOptions = {}) {
    super(1, options);
  }
}

/** A lock its owner may acquire again (and must release as often), like Python's `RLock`. */
export class RLock extends Lock {}

/** A counting semaphore, like Python's `multiprocessing.Semaphore(value)`. */
export class Semaphore extends SemLock {
  constructor(value = 1, options: PrimitiveOptions = {}) {
    checkInteger(value, "value", 0);
    super(value, options);
  }

  /** The number of permits available now. */
  getValue(): number {
    return flavorOf(this).value();
  }
}

/** A semaphore that refuses to be released above its initial value. */
export class BoundedSemaphore extends Semaphore {}

const eventArrival = new Arrival<EventFlavor>();

/** A flag processes wait on, like Python's `multiprocessing.Event`. */
export class Event {
  readonly #flavor: EventFlavor;

  constructor(options: PrimitiveOptions = {}) {
    const arrived = eventArrival.take();
    if (arrived) {
      this.#flavor = arrived;
      return;
    }
    checkOptionNames(options, primitiveOptionNames, "new Event()");
    const memory = memoryOf(methodOf(options, "Event"));
    this.#flavor = needsFallback(memory) ? new RemoteEvent() : new AtomicEvent(memory);
  }

  /** True once `set()` was called (and `clear()` not since). */
  isSet(): boolean {
    return this.#flavor.isSet();
  }

  /** Sets the flag and wakes every waiter. */
  set(): void {
    this.#flavor.set();
  }

  /** Clears the flag. */
  clear(): void {
    this.#flavor.clear();
  }

  /** Resolves true once the flag is set, false after `timeout` ms. */
  async wait(timeout?: number): Promise<boolean> {
    checkTimeout(timeout, "timeout");
    return this.#flavor.wait(timeout);
  }

  /** `wait`, blocking this thread. */
  waitSync(timeout?: number): boolean {
    checkTimeout(timeout, "timeout");
    return this.#flavor.waitSync(timeout);
  }

  /** @internal Sends the event to another process, where it is the same event. */
  [reduce](transport: Transport): Reduced {
    return { kind: "mpts.Event", state: this.#flavor.reduce(transport) };
  }

  /** Shows whether the flag is set. */
  [inspect.custom](): string {
    return `Event { set: ${this.isSet()} }`;
  }
}

registerRebuilder("mpts.Event", (state) => {
  const s = state as RemoteState | BlockRef;
  const flavor = isRemoteState(s) ? new RemoteEvent(s.remote) : new AtomicEvent(s);
  return eventArrival.with(flavor, () => new Event());
});

const conditionArrival = new Arrival<ConditionFlavor>();

/**
 * A condition variable over a lock (an RLock by default), like Python's `multiprocessing.Condition`.
 * `wait` releases the lock while waiting and holds it again when it resolves. `notify(n)` wakes at
 * most `n` of the waiters waiting at that moment; a waiter that starts waiting later is not one of them.
 */
export class Condition {
  readonly #lock: SemLock;
  readonly #flavor: ConditionFlavor;

  constructor(lock?: Lock, options: PrimitiveOptions = {}) {
    if (lock !== undefined && !(lock instanceof SemLock)) {
      throw new TypeError("lock must be a Lock or RLock from multiprocessing-ts");
    }
    const arrived = conditionArrival.take();
    if (arrived) {
      this.#lock = lock!;
      this.#flavor = arrived;
      return;
    }
    checkOptionNames(options, primitiveOptionNames, "new Condition()");
    this.#lock = lock ?? new RLock(options);
    const method = methodOf(options, "Condition");
    const lockFlavor = flavorOf(this.#lock);
    const remote = needsFallback(memoryOf(method));
    if (remote ? !(lockFlavor instanceof RemoteSemLock) : !(lockFlavor instanceof AtomicSemLock)) {
      throw new TypeError("the lock must be made for the same start method as the Condition");
    }
    this.#flavor = remote
      ? new RemoteCondition({ lock: lockFlavor as RemoteSemLock })
      : new AtomicCondition(lockFlavor as AtomicSemLock, memoryOf(method));
  }

  /** Acquires the condition's lock without blocking the event loop, as `Lock.acquire()` does. */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  /** Acquires the condition's lock, blocking this thread, as `Lock.acquireSync()` does. */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#lock.acquireSync(options);
  }

  /** Releases the condition's lock once. */
  release(): void {
    this.#lock.release();
  }

  /** Runs `fn` holding the condition's lock, releasing it however `fn` ends. */
  withLock<R>(fn: () => R): Promise<Awaited<R>> {
    return this.#lock.withLock(fn);
  }

  /** Releases the lock, waits for a notify (or `timeout` ms), re-acquires; false on timeout. */
  async wait(timeout?: number): Promise<boolean> {
    checkTimeout(timeout, "timeout");
    return this.#flavor.wait(timeout);
  }

  /** `wait`, blocking this thread. */
  waitSync(timeout?: number): boolean {
    checkTimeout(timeout, "timeout");
    return this.#flavor.waitSync(timeout);
  }

  /** Waits until `predicate()` is truthy (re-checked after each notify); returns its last value. */
  async waitFor<R>(predicate: () => R, timeout?: number): Promise<R> {
    checkTimeout(timeout, "timeout");
    const deadline = deadlineFor(timeout);
    let result = predicate();
    while (!result) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await this.wait(left === Number.POSITIVE_INFINITY ? undefined : left);
      result = predicate();
    }
    return result;
  }

  /** Wakes at most `n` of the waiters waiting now (the lock must be held). */
  notify(n = 1): void {
    checkInteger(n, "n", 0);
    this.#flavor.notify(n);
  }

  /** Wakes every waiter (the lock must be held). */
  notifyAll(): void {
    this.#flavor.notifyAll();
  }

  /** @internal Sends the condition and its lock to another process, where they are the same ones. */
  [reduce](transport: Transport): Reduced {
    return { kind: "mpts.Condition", state: { lock: this.#lock, flavor: this.#flavor.reduce(transport) } };
  }
}

registerRebuilder("mpts.Condition", (state) => {
  const s = state as { lock: Lock; flavor: RemoteState | BlockRef };
  const flavor = isRemoteState(s.flavor)
    ? new RemoteCondition(s.flavor.remote)
    : new AtomicCondition(flavorOf(s.lock) as AtomicSemLock, s.flavor);
  return conditionArrival.with(flavor, () => new Condition(s.lock));
});

const barrierOptionNames = optionNames<NonNullable<ConstructorParameters<typeof Barrier>[1]>>({
  context: true,
  action: true,
  timeout: true,
});

const barrierArrival = new Arrival<{ flavor: BarrierFlavor; action: CodeRef | undefined }>();

/**
 * A barrier for `parties` processes, like Python's `multiprocessing.Barrier`. `wait()` resolves to
 * a distinct index in [0, parties) once all have arrived; `action` runs once per round, in the
 * last process to arrive, before any party is released. A barrier with an action can be sent to
 * another process when the action is an exported (or self-contained) function: it travels by
 * reference, as a task function does, and the receiving process imports it the first time it runs it.
 */
export class Barrier {
  readonly #parties: number;
  readonly #timeout: number | undefined;
  readonly #action: (() => unknown) | undefined;
  /** How another process finds the action: made when first sent, or received with the barrier. */
  #actionRef: CodeRef | undefined;
  readonly #flavor: BarrierFlavor;

  constructor(parties: number, options: PrimitiveOptions & { action?: () => unknown; timeout?: number } = {}) {
    checkInteger(parties, "parties", 1);
    const arrived = barrierArrival.take();
    if (!arrived) checkOptionNames(options, barrierOptionNames, "new Barrier()");
    if (options.action !== undefined && typeof options.action !== "function") {
      throw new TypeError("options.action must be a function");
    }
    checkTimeout(options.timeout, "options.timeout");
    this.#parties = parties;
    this.#timeout = options.timeout;
    const actionRef = arrived?.action;
    this.#actionRef = actionRef;
    this.#action = actionRef ? async () => (await resolveCode(actionRef, { importing() {} }))() : options.action;
    if (arrived) {
      this.#flavor = arrived.flavor;
      return;
    }
    const memory = memoryOf(methodOf(options, "Barrier"));
    this.#flavor = needsFallback(memory)
      ? new RemoteBarrier({ parties, timeout: options.timeout })
      : new AtomicBarrier(parties, memory);
  }

  /** Parties needed to pass. */
  get parties(): number {
    return this.#parties;
  }

  /** Parties waiting now. */
  get nWaiting(): number {
    return this.#flavor.nWaiting();
  }

  /** True once aborted or timed out, until `reset()`. */
  get broken(): boolean {
    return this.#flavor.broken();
  }

  /**
   * Waits for all parties; rejects with BrokenBarrierError if the barrier is (or becomes) broken,
   * or when `timeout` (or the barrier's default timeout) passes, which breaks it for everyone.
   */
  async wait(timeout?: number): Promise<number> {
    checkTimeout(timeout, "timeout");
    return this.#flavor.wait(timeout ?? this.#timeout, this.#action);
  }

  /** Breaks the barrier: current and later waiters get BrokenBarrierError until `reset()`. */
  abort(): void {
    this.#flavor.abort();
  }

  /** Returns the barrier to its empty state; parties waiting now get BrokenBarrierError. */
  reset(): void {
    this.#flavor.reset();
  }

  /** @internal Sends the barrier to another process, where it is the same one; its `action` goes by reference (module and name). */
  [reduce](transport: Transport): Reduced {
    const flavor = this.#flavor.reduce(transport);
    if (this.#action) this.#actionRef ??= codeRef(this.#action, "the Barrier's options.action");
    return {
      kind: "mpts.Barrier",
      state: { parties: this.#parties, timeout: this.#timeout, action: this.#actionRef, flavor },
    };
  }
}

registerRebuilder("mpts.Barrier", (state) => {
  const s = state as {
    parties: number;
    timeout: number | undefined;
    action: CodeRef | undefined;
    flavor: RemoteState | AtomicBarrierState;
  };
  const flavor = isRemoteState(s.flavor) ? new RemoteBarrier(s.flavor.remote) : new AtomicBarrier(s.parties, s.flavor);
  return barrierArrival.with({ flavor, action: s.action }, () => new Barrier(s.parties, { timeout: s.timeout }));
});
