/**
 * Locks, semaphores, events, conditions and barriers shared by processes and threads.
 *
 * Every primitive is built on one base, `SemLock`: a counter word with a waiter count, living in
 * shared memory (internal/shared-memory.ts), changed only with atomic operations, and waited on
 * through a futex-style wait/wake. Lock, RLock, Semaphore and BoundedSemaphore are SemLocks;
 * Condition, Event and Barrier are built from SemLocks and one more word each.
 *
 *   word layout of a SemLock:  [0] value (free permits)  [1] waiters  [2] owner  [3] recursion depth
 *
 * The blocking call is the non-blocking attempt plus waiting: `acquireSync` and `acquire` share
 * `#tryAcquire`, and differ only in how they wait (blocking the thread, or a promise).
 *
 * Without shared memory (the spawn start method with no native addon), each primitive is instead an
 * object held by a broker (internal/fallback.ts): `_remote` is set and every method is one call.
 */
import { inspect } from "node:util";
import { threadId } from "./backends/identity.js";
import { BrokenBarrierError, ProcessError } from "./errors.js";
import { type Reduced, type Reducible, type Transport, reduce, registerRebuilder } from "./internal/codec.js";
import { resolveMethod } from "./internal/methods.js";
import type { StartMethod } from "./internal/runtime.js";
import { type Remote, needsFallback, remoteArg, remoteAsync, remoteCreate, remoteSync } from "./internal/fallback.js";
import { type CodeRef, codeRef, resolveCode } from "./reduction.js";
import { type Block, type BlockRef, allocate, attach, checkTransport } from "./internal/shared-memory.js";
import {
  type WaitOptions,
  checkInteger,
  checkOptionNames,
  checkTimeout,
  checkWaitOptions,
  optionNames,
} from "./internal/validate.js";

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

const ACQUIRED = Promise.resolve(true);

const VALUE = 0;
const WAITERS = 1;
const OWNER = 2;
const DEPTH = 3;

/** This thread's owner id: unique among the processes and threads of the machine. */
const me = ((process.pid % 0x1000000) * 64 + (threadId % 64)) | 0 || 1;

function methodOf(options: PrimitiveOptions | undefined, what: string): StartMethod {
  return resolveMethod(options, "primitives", what);
}

type Kind = "Lock" | "RLock" | "Semaphore" | "BoundedSemaphore";

/** What a primitive is made from: options, a block it attaches to, or a broker object. */
type Source = PrimitiveOptions | BlockRef | { remote: Remote };

/** The base primitive: a counting semaphore in shared memory, optionally owned and recursive. */
export class SemLock implements Reducible {
  /** @internal */
  readonly _block!: Block;
  /** @internal The broker object, when there is no shared memory. */
  readonly _remote: Remote | undefined;
  readonly #words!: Int32Array;
  readonly #kind: Kind;
  readonly #max: number;

  /** @internal */
  constructor(value: number, max: number, options: Source = {}) {
    this.#kind = kindOf(new.target);
    this.#max = max;
    if ("remote" in options) {
      this._remote = options.remote;
      return;
    }
    if ("k" in options) this._block = attach(options);
    else {
      checkOptionNames(options, primitiveOptionNames, `new ${this.#kind}()`);
      const method = methodOf(options, this.#kind);
      if (needsFallback(method)) {
        this._remote = remoteCreate(this.#kind, this.#kind.endsWith("Lock") ? [] : [value]);
        return;
      }
      this._block = allocate(16, method);
      this.#words = new Int32Array(this._block.buffer, this._block.offset, 4);
      Atomics.store(this.#words, VALUE, value);
      return;
    }
    this.#words = new Int32Array(this._block.buffer, this._block.offset, 4);
  }

  #tryAcquire(): boolean {
    const w = this.#words;
    if (this.#kind === "Lock") {
      // the uncontended path is one fenced instruction; OWNER is only read by this thread (Condition)
      if (Atomics.compareExchange(w, VALUE, 1, 0) !== 1) return false;
      w[OWNER] = me;
      return true;
    }
    if (this.#kind === "RLock" && Atomics.load(w, OWNER) === me) {
      w[DEPTH]!++;
      return true;
    }
    for (;;) {
      const v = Atomics.load(w, VALUE);
      if (v <= 0) return false;
      if (Atomics.compareExchange(w, VALUE, v, v - 1) === v) {
        if (this.#kind === "RLock") {
          Atomics.store(w, OWNER, me);
          w[DEPTH] = 1;
        }
        return true;
      }
    }
  }

  /**
   * Acquires, blocking this thread (and its event loop) until available. Resolves true once
   * acquired, false when `block: false` finds it taken or `timeout` ms pass.
   */
  acquireSync(options?: AcquireOptions): boolean {
    if (this._remote) {
      const { block, timeout } = checkWaitOptions(options ?? {}, "acquireSync()");
      return remoteSync(this._remote, "acquire", { block, timeout });
    }
    if (this.#tryAcquire()) {
      if (options !== undefined) checkWaitOptions(options, "acquireSync()");
      return true;
    }
    const { block, timeout } = checkWaitOptions(options ?? {}, "acquireSync()");
    if (!block) return false;
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    const w = this.#words;
    Atomics.add(w, WAITERS, 1);
    try {
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) return this.#tryAcquire();
        this._block.waiter.wait(w, VALUE, 0, left);
        if (this.#tryAcquire()) return true;
      }
    } finally {
      Atomics.sub(w, WAITERS, 1);
    }
  }

  /** Acquires without blocking the event loop; resolves true once acquired, false on timeout. */
  acquire(options?: AcquireOptions): Promise<boolean> {
    // uncontended and without options: no async function, one already-settled promise
    if (options === undefined && !this._remote && this.#tryAcquire()) return ACQUIRED;
    return this.#acquire(options);
  }

  async #acquire(options: AcquireOptions | undefined): Promise<boolean> {
    const { block, timeout, signal } = checkWaitOptions(options ?? {}, "acquire()");
    if (this._remote) return remoteAsync(this._remote, "acquire", [{ block, timeout }], signal);
    if (this.#tryAcquire()) return true;
    if (!block) return false;
    if (signal?.aborted) throw signal.reason;
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    const w = this.#words;
    Atomics.add(w, WAITERS, 1);
    try {
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) return this.#tryAcquire();
        // a wait is never longer than 1 s, so an abort is noticed within that even mid-wait
        await this._block.waiter.waitAsync(w, VALUE, 0, Math.min(left, signal ? 1000 : left));
        if (this.#tryAcquire()) return true;
        if (signal?.aborted) throw signal.reason;
      }
    } finally {
      Atomics.sub(w, WAITERS, 1);
    }
  }

  /** Releases once. An RLock must be released by its owner; a Lock by anyone, once per acquire. */
  release(): void {
    if (this._remote) {
      remoteSync(this._remote, "release");
      return;
    }
    const w = this.#words;
    if (this.#kind === "RLock") {
      if (Atomics.load(w, OWNER) !== me) throw new ProcessError("cannot release un-acquired lock");
      if (--w[DEPTH]! > 0) return;
      Atomics.store(w, OWNER, 0);
    } else if (this.#kind === "Lock") {
      w[OWNER] = 0;
      // one fenced instruction: free the lock, and learn whether it was held at all
      if (Atomics.exchange(w, VALUE, 1) !== 0) throw new ProcessError("cannot release an unlocked lock");
      if (Atomics.load(w, WAITERS) > 0) this._block.waiter.wake(w, VALUE, 1);
      return;
    } else if (this.#kind === "BoundedSemaphore" && Atomics.load(w, VALUE) >= this.#max) {
      throw new ProcessError("semaphore released too many times");
    }
    Atomics.add(w, VALUE, 1);
    if (Atomics.load(w, WAITERS) > 0) this._block.waiter.wake(w, VALUE, 1);
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

  /** @internal The free permits now (Semaphore's `getValue`). */
  protected _value(): number {
    if (this._remote) {
      return this.#kind.endsWith("Lock")
        ? remoteSync(this._remote, "locked")
          ? 0
          : 1
        : remoteSync(this._remote, "getValue");
    }
    return Atomics.load(this.#words, VALUE);
  }

  /** @internal For Condition: whether this thread owns it, and its recursion depth. */
  _ownedDepth(): number {
    const w = this.#words;
    if (this.#kind === "Lock") return Atomics.load(w, OWNER) === me ? 1 : 0;
    if (this.#kind !== "RLock") return 1;
    return Atomics.load(w, OWNER) === me ? w[DEPTH]! : 0;
  }

  /** @internal For Condition: release fully, returning the depth to restore. */
  _releaseAll(): number {
    const depth = this.#kind === "RLock" ? this.#words[DEPTH]! : 1;
    if (this.#kind === "RLock") this.#words[DEPTH] = 1;
    this.release();
    return depth;
  }

  /** @internal For Condition: restore the depth after re-acquiring. */
  _restore(depth: number): void {
    if (this.#kind === "RLock") this.#words[DEPTH] = depth;
  }

  /** Sends the primitive to another process, where it is the same one (same count, same owner). */
  [reduce](transport: Transport): Reduced {
    if (this._remote)
      return { kind: "mpts.SemLock", state: { kind: this.#kind, max: this.#max, remote: this._remote } };
    checkTransport(this._block.ref, transport, this.#kind);
    return { kind: "mpts.SemLock", state: { kind: this.#kind, max: this.#max, ref: this._block.ref } };
  }

  /** Shows the counter and, for a lock, whether this process or thread owns it. */
  [inspect.custom](): string {
    if (this._remote) return `${this.#kind} { held by a broker }`;
    return `${this.#kind} { value: ${this._value()}${this.#kind.endsWith("Lock") ? `, owned: ${this._ownedDepth() > 0}` : ""} }`;
  }
}

function kindOf(target: Function): Kind {
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
  const s = state as { kind: Kind; max: number; ref: BlockRef; remote?: Remote };
  const cls = { Lock, RLock, Semaphore, BoundedSemaphore }[s.kind];
  return Reflect.construct(SemLock, [0, s.max, s.remote ? { remote: s.remote } : s.ref], cls);
});

/**
 * A lock shared by processes and threads, like Python's `multiprocessing.Lock`. Any process may
 * release it (it is a semaphore of one); `withLock(fn)` is Python's `with lock:`.
 */
export class Lock extends SemLock {
  constructor(options: PrimitiveOptions = {}) {
    super(1, 1, options);
  }
}

/** A lock its owner may acquire again (and must release as often), like Python's `RLock`. */
export class RLock extends Lock {}

/** A counting semaphore, like Python's `multiprocessing.Semaphore(value)`. */
export class Semaphore extends SemLock {
  constructor(value = 1, options: PrimitiveOptions = {}) {
    checkInteger(value, "value", 0);
    super(
      value,
      new.target === BoundedSemaphore || new.target.prototype instanceof BoundedSemaphore ? value : 0x7fffffff,
      options,
    );
  }

  /** The number of permits available now. */
  getValue(): number {
    return this._value();
  }
}

/** A semaphore that refuses to be released above its initial value. */
export class BoundedSemaphore extends Semaphore {}

/** A flag processes wait on, like Python's `multiprocessing.Event`. */
export class Event implements Reducible {
  readonly #block!: Block;
  readonly #w!: Int32Array;
  readonly #remote: Remote | undefined;

  constructor(options: Source = {}) {
    if (!("remote" in options || "k" in options)) checkOptionNames(options, primitiveOptionNames, "new Event()");
    if ("remote" in options) this.#remote = options.remote;
    else if (!("k" in options) && needsFallback(methodOf(options, "Event"))) this.#remote = remoteCreate("Event", []);
    if (this.#remote) return;
    this.#block = "k" in options ? attach(options) : allocate(8, methodOf(options as PrimitiveOptions, "Event"));
    this.#w = new Int32Array(this.#block.buffer, this.#block.offset, 2);
  }

  /** True once `set()` was called (and `clear()` not since). */
  isSet(): boolean {
    if (this.#remote) return remoteSync(this.#remote, "isSet");
    return Atomics.load(this.#w, 0) === 1;
  }

  /** Sets the flag and wakes every waiter. */
  set(): void {
    if (this.#remote) {
      remoteSync(this.#remote, "set");
      return;
    }
    Atomics.store(this.#w, 0, 1);
    this.#block.waiter.wake(this.#w, 0, 0x7fffffff);
  }

  /** Clears the flag. */
  clear(): void {
    if (this.#remote) {
      remoteSync(this.#remote, "clear");
      return;
    }
    Atomics.store(this.#w, 0, 0);
  }

  /** Resolves true once the flag is set, false after `timeout` ms. */
  async wait(timeout?: number): Promise<boolean> {
    checkTimeout(timeout, "timeout");
    if (this.#remote) return remoteAsync(this.#remote, "wait", [timeout]);
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    while (!this.isSet()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await this.#block.waiter.waitAsync(this.#w, 0, 0, left);
    }
    return true;
  }

  /** `wait`, blocking this thread. */
  waitSync(timeout?: number): boolean {
    checkTimeout(timeout, "timeout");
    if (this.#remote) return remoteSync(this.#remote, "wait", timeout);
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    while (!this.isSet()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      this.#block.waiter.wait(this.#w, 0, 0, left);
    }
    return true;
  }

  /** Sends the event to another process, where it is the same event. */
  [reduce](transport: Transport): Reduced {
    if (this.#remote) return { kind: "mpts.Event", state: { remote: this.#remote } };
    checkTransport(this.#block.ref, transport, "Event");
    return { kind: "mpts.Event", state: this.#block.ref };
  }

  /** Shows whether the flag is set. */
  [inspect.custom](): string {
    return `Event { set: ${this.isSet()} }`;
  }
}

registerRebuilder("mpts.Event", (ref) => new Event(ref as BlockRef | { remote: Remote }));

// Condition words. Waiters join a group; a notify hands out permits to the oldest group that still
// has unsignalled waiters, so a waiter that arrives after a notify can never take a permit meant for
// one that was already waiting, and `notify(n)` signals at most n of them. Every change is made
// holding the condition's lock, except sleeping: a waiter sleeps on SEQ (bumped by every notify)
// without the lock, and takes the lock to claim a permit or to leave after a timeout.
//   [SEQ] wake-up counter   [SLEEPERS] waiters sleeping   [DONE] every group up to this one is signalled
//   [JOIN] the group a new waiter joins: DONE+1 until it gets a permit, then DONE+2
//   [UNSIGNALLED] waiters of group DONE+1 without a permit   [PERMITS] permits of group DONE+1 not yet taken
//   [LATER] waiters of group DONE+2
const SEQ = 0;
const SLEEPERS = 1;
const DONE = 2;
const JOIN = 3;
const UNSIGNALLED = 4;
const PERMITS = 5;
const LATER = 6;

/**
 * A condition variable over a lock (an RLock by default), like Python's `multiprocessing.Condition`.
 * `wait` releases the lock while waiting and holds it again when it resolves. `notify(n)` wakes at
 * most `n` of the waiters waiting at that moment; a waiter that starts waiting later is not one of them.
 */
export class Condition implements Reducible {
  readonly #lock: SemLock;
  readonly #block!: Block;
  readonly #w!: Int32Array;
  readonly #remote: Remote | undefined;

  constructor(lock?: Lock, options: Source = {}) {
    if (lock !== undefined && !(lock instanceof SemLock)) {
      throw new TypeError("lock must be a Lock or RLock from multiprocessing-ts");
    }
    if ("remote" in options) {
      this.#lock = lock!;
      this.#remote = options.remote;
      return;
    }
    if (!("k" in options)) checkOptionNames(options, primitiveOptionNames, "new Condition()");
    this.#lock = lock ?? new RLock("k" in options ? {} : options);
    if (!("k" in options) && needsFallback(methodOf(options, "Condition"))) {
      if (!this.#lock._remote) throw new TypeError("the lock must be made for the same start method as the Condition");
      this.#remote = remoteCreate("Condition", [remoteArg(this.#lock._remote)]);
      return;
    }
    this.#block = "k" in options ? attach(options) : allocate(28, methodOf(options, "Condition"));
    this.#w = new Int32Array(this.#block.buffer, this.#block.offset, 7);
    if (!("k" in options)) Atomics.store(this.#w, JOIN, 1);
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

  #own(what: string): void {
    if (this.#lock._ownedDepth() === 0) throw new ProcessError(`cannot ${what} on an un-acquired lock`);
  }

  /** Holding the lock: joins the open group, returning it. */
  #join(): number {
    const w = this.#w;
    const group = Atomics.load(w, JOIN);
    Atomics.add(w, group === ((Atomics.load(w, DONE) + 1) | 0) ? UNSIGNALLED : LATER, 1);
    Atomics.add(w, SLEEPERS, 1);
    return group;
  }

  /** Without the lock, a hint: whether `group` may hold a permit now (to be claimed with the lock). */
  #mayClaim(group: number): boolean {
    const done = Atomics.load(this.#w, DONE);
    return ((group - done) | 0) <= 0 || (group === ((done + 1) | 0) && Atomics.load(this.#w, PERMITS) > 0);
  }

  /**
   * Holding the lock: claims a permit of `group`, true if it had one; otherwise, once `timedOut`, the
   * waiter leaves its group. Either way the wait is over unless this returns false and not `timedOut`.
   */
  #claim(group: number, timedOut: boolean): boolean {
    const w = this.#w;
    const done = Atomics.load(w, DONE);
    if (((group - done) | 0) <= 0) return true;
    const oldest = group === ((done + 1) | 0);
    if (oldest && Atomics.load(w, PERMITS) > 0) {
      Atomics.sub(w, PERMITS, 1);
      return true;
    }
    if (timedOut) Atomics.sub(w, oldest ? UNSIGNALLED : LATER, 1);
    return false;
  }

  /** Releases the lock, waits for a notify (or `timeout` ms), re-acquires; false on timeout. */
  async wait(timeout?: number): Promise<boolean> {
    checkTimeout(timeout, "timeout");
    if (this.#remote) return remoteAsync(this.#remote, "wait", [timeout]);
    this.#own("wait");
    const w = this.#w;
    const group = this.#join();
    const depth = this.#lock._releaseAll();
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    let notified: boolean;
    for (;;) {
      // wake-ups may be spurious, and every notify wakes every sleeper: sleep until a permit may be ours
      for (;;) {
        const seq = Atomics.load(w, SEQ);
        if (this.#mayClaim(group)) break;
        const left = deadline - performance.now();
        if (left <= 0) break;
        await this.#block.waiter.waitAsync(w, SEQ, seq, left);
      }
      await this.#lock.acquire();
      const timedOut = deadline - performance.now() <= 0;
      notified = this.#claim(group, timedOut);
      if (notified || timedOut) break;
      this.#lock.release(); // another waiter of the group took the permit first
    }
    Atomics.sub(w, SLEEPERS, 1);
    this.#lock._restore(depth);
    return notified;
  }

  /** `wait`, blocking this thread. */
  waitSync(timeout?: number): boolean {
    checkTimeout(timeout, "timeout");
    if (this.#remote) return remoteSync(this.#remote, "wait", timeout);
    this.#own("wait");
    const w = this.#w;
    const group = this.#join();
    const depth = this.#lock._releaseAll();
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    let notified: boolean;
    for (;;) {
      for (;;) {
        const seq = Atomics.load(w, SEQ);
        if (this.#mayClaim(group)) break;
        const left = deadline - performance.now();
        if (left <= 0) break;
        this.#block.waiter.wait(w, SEQ, seq, left);
      }
      this.#lock.acquireSync();
      const timedOut = deadline - performance.now() <= 0;
      notified = this.#claim(group, timedOut);
      if (notified || timedOut) break;
      this.#lock.release();
    }
    Atomics.sub(w, SLEEPERS, 1);
    this.#lock._restore(depth);
    return notified;
  }

  /** Waits until `predicate()` is truthy (re-checked after each notify); returns its last value. */
  async waitFor<R>(predicate: () => R, timeout?: number): Promise<R> {
    checkTimeout(timeout, "timeout");
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
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
    if (this.#remote) {
      remoteSync(this.#remote, "notify", n);
      return;
    }
    this.#own("notify");
    const w = this.#w;
    for (let given = 0; given < n; ) {
      const done = Atomics.load(w, DONE);
      if (Atomics.load(w, UNSIGNALLED) > 0) {
        Atomics.sub(w, UNSIGNALLED, 1);
        Atomics.add(w, PERMITS, 1);
        Atomics.store(w, JOIN, (done + 2) | 0); // closed: later waiters cannot take this group's permits
        given++;
        continue;
      }
      // the oldest group is all signalled (or empty): it is done, and the group after it is the oldest
      const later = Atomics.load(w, JOIN) === ((done + 2) | 0) ? Atomics.load(w, LATER) : 0;
      if (later === 0) break;
      this.#advance((done + 1) | 0, later);
    }
    this.#wake();
  }

  /** Wakes every waiter (the lock must be held). */
  notifyAll(): void {
    if (this.#remote) {
      remoteSync(this.#remote, "notifyAll");
      return;
    }
    this.#own("notify");
    this.#advance(Atomics.load(this.#w, JOIN), 0);
    this.#wake();
  }

  /** Holding the lock: every group up to `done` is signalled; the next, open, has `waiting` waiters. */
  #advance(done: number, waiting: number): void {
    const w = this.#w;
    Atomics.store(w, DONE, done);
    Atomics.store(w, UNSIGNALLED, waiting);
    Atomics.store(w, PERMITS, 0);
    Atomics.store(w, LATER, 0);
    Atomics.store(w, JOIN, (done + 1) | 0);
  }

  #wake(): void {
    Atomics.add(this.#w, SEQ, 1);
    if (Atomics.load(this.#w, SLEEPERS) > 0) this.#block.waiter.wake(this.#w, SEQ, 0x7fffffff);
  }

  /** Sends the condition and its lock to another process, where they are the same ones. */
  [reduce](transport: Transport): Reduced {
    if (this.#remote) return { kind: "mpts.Condition", state: { lock: this.#lock, remote: this.#remote } };
    checkTransport(this.#block.ref, transport, "Condition");
    return { kind: "mpts.Condition", state: { lock: this.#lock, ref: this.#block.ref } };
  }
}

registerRebuilder("mpts.Condition", (state) => {
  const s = state as { lock: Lock; ref: BlockRef; remote?: Remote };
  return new Condition(s.lock, s.remote ? { remote: s.remote } : s.ref);
});

// Barrier words: arrivals this round, the round number, the round that broke (+1), and a counter
// bumped on every change that waiters sleep on, so that no change can slip between a check and a wait.
const COUNT = 0;
const GEN = 1;
const BROKEN = 2;
const EPOCH = 3;

const barrierOptionNames = optionNames<NonNullable<ConstructorParameters<typeof Barrier>[1]>>({
  context: true,
  action: true,
  timeout: true,
});

/**
 * A barrier for `parties` processes, like Python's `multiprocessing.Barrier`. `wait()` resolves to
 * a distinct index in [0, parties) once all have arrived; `action` runs once per round, in the
 * last process to arrive, before any party is released. A barrier with an action can be sent to
 * another process when the action is an exported (or self-contained) function: it travels by
 * reference, as a task function does, and the receiving process imports it the first time it runs it.
 */
export class Barrier implements Reducible {
  readonly #parties: number;
  readonly #timeout: number | undefined;
  readonly #action: (() => unknown) | undefined;
  /** How another process finds the action: made when first sent, or received with the barrier. */
  #actionRef: CodeRef | undefined;
  readonly #mutex!: Lock;
  readonly #block!: Block;
  readonly #w!: Int32Array;
  readonly #remote: Remote | undefined;

  constructor(
    parties: number,
    options: PrimitiveOptions & { action?: () => unknown; timeout?: number } = {},
    attachTo?: ({ ref: BlockRef; mutex: Lock } | { remote: Remote }) & { action?: CodeRef },
  ) {
    checkInteger(parties, "parties", 1);
    if (!attachTo) checkOptionNames(options, barrierOptionNames, "new Barrier()");
    if (options.action !== undefined && typeof options.action !== "function") {
      throw new TypeError("options.action must be a function");
    }
    checkTimeout(options.timeout, "options.timeout");
    this.#parties = parties;
    this.#timeout = options.timeout;
    const actionRef = attachTo?.action;
    this.#actionRef = actionRef;
    this.#action = actionRef ? async () => (await resolveCode(actionRef, { importing() {} }))() : options.action;
    if (attachTo && "remote" in attachTo) this.#remote = attachTo.remote;
    else if (!attachTo && needsFallback(methodOf(options, "Barrier"))) {
      this.#remote = remoteCreate("Barrier", [parties, { timeout: options.timeout }]);
    }
    if (this.#remote || (attachTo && "remote" in attachTo)) return;
    this.#mutex = attachTo?.mutex ?? new Lock({ context: options.context });
    this.#block = attachTo ? attach(attachTo.ref) : allocate(16, methodOf(options, "Barrier"));
    this.#w = new Int32Array(this.#block.buffer, this.#block.offset, 4);
  }

  /** Parties needed to pass. */
  get parties(): number {
    return this.#parties;
  }

  /** Parties waiting now. */
  get nWaiting(): number {
    if (this.#remote) return remoteSync(this.#remote, "nWaiting");
    return Atomics.load(this.#w, COUNT);
  }

  /** True once aborted or timed out, until `reset()`. */
  get broken(): boolean {
    if (this.#remote) return remoteSync(this.#remote, "broken");
    return Atomics.load(this.#w, BROKEN) === Atomics.load(this.#w, GEN) + 1;
  }

  /**
   * Waits for all parties; rejects with BrokenBarrierError if the barrier is (or becomes) broken,
   * or when `timeout` (or the barrier's default timeout) passes, which breaks it for everyone.
   */
  async wait(timeout?: number): Promise<number> {
    checkTimeout(timeout, "timeout");
    if (this.#remote) return this.#remoteWait(timeout);
    const limit = timeout ?? this.#timeout;
    const w = this.#w;
    await this.#mutex.acquire();
    if (this.broken) {
      this.#mutex.release();
      throw new BrokenBarrierError("the barrier is broken");
    }
    const gen = Atomics.load(w, GEN);
    const index = Atomics.add(w, COUNT, 1);
    if (index + 1 === this.#parties) {
      try {
        await this.#action?.();
      } catch (error) {
        this.#break();
        this.#mutex.release();
        throw error;
      }
      Atomics.store(w, COUNT, 0);
      Atomics.add(w, GEN, 1);
      this.#changed();
      this.#mutex.release();
      return index;
    }
    this.#mutex.release();
    const deadline = limit === undefined ? Number.POSITIVE_INFINITY : performance.now() + limit;
    for (;;) {
      const epoch = Atomics.load(w, EPOCH);
      if (Atomics.load(w, BROKEN) === gen + 1) throw new BrokenBarrierError("the barrier was broken while waiting");
      if (Atomics.load(w, GEN) !== gen) return index;
      const left = deadline - performance.now();
      if (left <= 0) {
        await this.#mutex.acquire();
        if (Atomics.load(w, GEN) === gen) this.#break();
        this.#mutex.release();
        continue;
      }
      await this.#block.waiter.waitAsync(w, EPOCH, epoch, left);
    }
  }

  async #remoteWait(timeout: number | undefined): Promise<number> {
    const remote = this.#remote!;
    const result = (await remoteAsync(remote, "wait", [timeout, this.#action !== undefined])) as
      | number
      | { index: number; runAction: true };
    if (typeof result === "number") return result;
    try {
      await this.#action!();
    } catch (error) {
      remoteSync(remote, "abort");
      throw error;
    }
    remoteSync(remote, "actionDone");
    return result.index;
  }

  #changed(): void {
    Atomics.add(this.#w, EPOCH, 1);
    this.#block.waiter.wake(this.#w, EPOCH, 0x7fffffff);
  }

  /** Breaks the barrier: current and later waiters get BrokenBarrierError until `reset()`. */
  abort(): void {
    if (this.#remote) {
      remoteSync(this.#remote, "abort");
      return;
    }
    this.#mutex.acquireSync();
    this.#break();
    this.#mutex.release();
  }

  /** Returns the barrier to its empty state; parties waiting now get BrokenBarrierError. */
  reset(): void {
    if (this.#remote) {
      remoteSync(this.#remote, "reset");
      return;
    }
    const w = this.#w;
    this.#mutex.acquireSync();
    if (Atomics.load(w, COUNT) > 0 || this.broken) Atomics.store(w, BROKEN, Atomics.load(w, GEN) + 1);
    Atomics.store(w, COUNT, 0);
    Atomics.add(w, GEN, 1);
    this.#changed();
    this.#mutex.release();
  }

  #break(): void {
    const w = this.#w;
    Atomics.store(w, BROKEN, Atomics.load(w, GEN) + 1);
    Atomics.store(w, COUNT, 0);
    this.#changed();
  }

  /** Sends the barrier to another process, where it is the same one; its `action` goes by reference (module and name). */
  [reduce](transport: Transport): Reduced {
    if (!this.#remote) checkTransport(this.#block.ref, transport, "Barrier");
    if (this.#action) this.#actionRef ??= codeRef(this.#action, "the Barrier's options.action");
    const common = { parties: this.#parties, timeout: this.#timeout, action: this.#actionRef };
    return {
      kind: "mpts.Barrier",
      state: this.#remote
        ? { ...common, remote: this.#remote }
        : { ...common, mutex: this.#mutex, ref: this.#block.ref },
    };
  }
}

registerRebuilder("mpts.Barrier", (state) => {
  const s = state as {
    parties: number;
    timeout: number | undefined;
    action: CodeRef | undefined;
    mutex: Lock;
    ref: BlockRef;
    remote?: Remote;
  };
  return new Barrier(
    s.parties,
    { timeout: s.timeout },
    s.remote ? { remote: s.remote, action: s.action } : { ref: s.ref, mutex: s.mutex, action: s.action },
  );
});
