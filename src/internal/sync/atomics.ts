/**
 * The Atomics flavor of the primitives: words in shared memory (shared-memory.ts), changed only
 * with atomic operations and waited on through the block's futex-style `Waiter`. Every primitive
 * is a `SemLockFlavor` or built from one and a few more words.
 *
 *   SemLock words:    [0] value (free permits)  [1] waiters  [2] owner  [3] recursion depth
 *   Event word:       [0] the flag
 *   Condition words:  see the comment above `SEQ`;  Barrier words: see the comment above `COUNT`
 *
 * Each blocking operation is one wait loop (a `WaitLoop`, see flavor.ts) that the blocking
 * call runs with `runSync` and its promise twin with `runAsync`.
 */
import { threadId } from "../identity.js";
import { BrokenBarrierError, ProcessError } from "../../errors.js";
import type { Transport } from "../wire/codec.js";
import type { SharedMemoryKind } from "../runtime.js";
import { type Block, type BlockRef, allocate, attach, checkTransport } from "../shm/shared-memory.js";
import {
  type BarrierFlavor,
  type ConditionFlavor,
  type EventFlavor,
  type SemLockFlavor,
  type SemLockKind,
  type WaitLoop,
  runAsync,
  runSync,
} from "./flavor.js";
import { deadlineFor } from "../waitlist.js";

const ACQUIRED = Promise.resolve(true);
const NOT_ACQUIRED = Promise.resolve(false);
const ALL = 0x7fffffff;

const VALUE = 0;
const WAITERS = 1;
const OWNER = 2;
const DEPTH = 3;

/** This thread's owner id: unique among the processes and threads of the machine. */
const me = ((process.pid % 0x1000000) * 64 + (threadId % 64)) | 0 || 1;

/** What a SemLock sends to another process. */
export interface AtomicSemLockState {
  max: number;
  ref: BlockRef;
}

/** A counting semaphore in shared memory, optionally owned and recursive. */
export class AtomicSemLock implements SemLockFlavor {
  readonly #block: Block;
  readonly #words: Int32Array;
  readonly #kind: SemLockKind;
  readonly #max: number;

  private constructor(kind: SemLockKind, max: number, block: Block) {
    this.#kind = kind;
    this.#max = max;
    this.#block = block;
    this.#words = new Int32Array(block.buffer, block.offset, 4);
  }

  /** A new one in the memory `memory`, with `value` free permits (at most `max`). */
  static create(kind: SemLockKind, value: number, max: number, memory: SharedMemoryKind): AtomicSemLock {
    const lock = new AtomicSemLock(kind, max, allocate(16, memory));
    Atomics.store(lock.#words, VALUE, value);
    return lock;
  }

  /** The one another process sent. */
  static attach(kind: SemLockKind, state: AtomicSemLockState): AtomicSemLock {
    return new AtomicSemLock(kind, state.max, attach(state.ref));
  }

  /** The non-blocking twin of every acquire. */
  tryAcquire(): boolean {
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

  /** After a failed `tryAcquire`: waits until it succeeds (true) or `timeout` ms pass (false). */
  *acquiring(timeout: number | undefined): WaitLoop<boolean> {
    const deadline = deadlineFor(timeout);
    const w = this.#words;
    Atomics.add(w, WAITERS, 1);
    try {
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) return this.tryAcquire();
        yield { waiter: this.#block.waiter, view: w, index: VALUE, expected: 0, timeout: left };
        if (this.tryAcquire()) return true;
      }
    } finally {
      Atomics.sub(w, WAITERS, 1);
    }
  }

  acquireSync(block: boolean, timeout: number | undefined): boolean {
    if (this.tryAcquire()) return true;
    return block && runSync(this.acquiring(timeout));
  }

  acquire(block: boolean, timeout: number | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    // uncontended: no async function, one already-settled promise
    if (this.tryAcquire()) return ACQUIRED;
    if (!block) return NOT_ACQUIRED;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return runAsync(this.acquiring(timeout), signal);
  }

  release(): void {
    const w = this.#words;
    if (this.#kind === "RLock") {
      if (Atomics.load(w, OWNER) !== me) throw new ProcessError("cannot release un-acquired lock");
      if (--w[DEPTH]! > 0) return;
      Atomics.store(w, OWNER, 0);
    } else if (this.#kind === "Lock") {
      w[OWNER] = 0;
      // one fenced instruction: free the lock, and learn whether it was held at all
      if (Atomics.exchange(w, VALUE, 1) !== 0) throw new ProcessError("cannot release an unlocked lock");
      if (Atomics.load(w, WAITERS) > 0) this.#block.waiter.wake(w, VALUE, 1);
      return;
    } else if (this.#kind === "BoundedSemaphore" && Atomics.load(w, VALUE) >= this.#max) {
      throw new ProcessError("semaphore released too many times");
    }
    Atomics.add(w, VALUE, 1);
    if (Atomics.load(w, WAITERS) > 0) this.#block.waiter.wake(w, VALUE, 1);
  }

  value(): number {
    return Atomics.load(this.#words, VALUE);
  }

  /** For Condition: whether this thread owns it (a semaphore counts as owned), and its recursion depth. */
  ownedDepth(): number {
    const w = this.#words;
    if (this.#kind === "Lock") return Atomics.load(w, OWNER) === me ? 1 : 0;
    if (this.#kind !== "RLock") return 1;
    return Atomics.load(w, OWNER) === me ? w[DEPTH]! : 0;
  }

  /** For Condition: releases fully, returning the depth to restore. */
  releaseAll(): number {
    const depth = this.#kind === "RLock" ? this.#words[DEPTH]! : 1;
    if (this.#kind === "RLock") this.#words[DEPTH] = 1;
    this.release();
    return depth;
  }

  /** For Condition: restores the depth after re-acquiring. */
  restore(depth: number): void {
    if (this.#kind === "RLock") this.#words[DEPTH] = depth;
  }

  reduce(transport: Transport): AtomicSemLockState {
    checkTransport(this.#block.ref, transport, this.#kind);
    return { max: this.#max, ref: this.#block.ref };
  }

  describe(): string {
    const owned = this.#kind.endsWith("Lock") ? `, owned: ${this.ownedDepth() > 0}` : "";
    return `value: ${this.value()}${owned}`;
  }
}

/** A flag word. */
export class AtomicEvent implements EventFlavor {
  readonly #block: Block;
  readonly #w: Int32Array;

  /** A new event in the memory `memory`, or the one `ref` names. */
  constructor(from: SharedMemoryKind | BlockRef) {
    this.#block = typeof from === "string" ? allocate(8, from) : attach(from);
    this.#w = new Int32Array(this.#block.buffer, this.#block.offset, 2);
  }

  isSet(): boolean {
    return Atomics.load(this.#w, 0) === 1;
  }

  set(): void {
    Atomics.store(this.#w, 0, 1);
    this.#block.waiter.wake(this.#w, 0, ALL);
  }

  clear(): void {
    Atomics.store(this.#w, 0, 0);
  }

  *#waiting(timeout: number | undefined): WaitLoop<boolean> {
    const deadline = deadlineFor(timeout);
    while (!this.isSet()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      yield { waiter: this.#block.waiter, view: this.#w, index: 0, expected: 0, timeout: left };
    }
    return true;
  }

  wait(timeout: number | undefined): Promise<boolean> {
    return runAsync(this.#waiting(timeout));
  }

  waitSync(timeout: number | undefined): boolean {
    return runSync(this.#waiting(timeout));
  }

  reduce(transport: Transport): BlockRef {
    checkTransport(this.#block.ref, transport, "Event");
    return this.#block.ref;
  }
}

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

/** A condition variable's words, over the Atomics flavor of its lock. */
export class AtomicCondition implements ConditionFlavor {
  readonly #lock: AtomicSemLock;
  readonly #block: Block;
  readonly #w: Int32Array;

  /** A new condition in the memory `memory`, or the one `ref` names; over `lock`. */
  constructor(lock: AtomicSemLock, from: SharedMemoryKind | BlockRef) {
    this.#lock = lock;
    this.#block = typeof from === "string" ? allocate(28, from) : attach(from);
    this.#w = new Int32Array(this.#block.buffer, this.#block.offset, 7);
    if (typeof from === "string") Atomics.store(this.#w, JOIN, 1);
  }

  #own(what: string): void {
    if (this.#lock.ownedDepth() === 0) throw new ProcessError(`cannot ${what} on an un-acquired lock`);
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
  *#waiting(timeout: number | undefined): WaitLoop<boolean> {
    this.#own("wait");
    const w = this.#w;
    const group = this.#join();
    const depth = this.#lock.releaseAll();
    const deadline = deadlineFor(timeout);
    let notified: boolean;
    for (;;) {
      // wake-ups may be spurious, and every notify wakes every sleeper: sleep until a permit may be ours
      for (;;) {
        const seq = Atomics.load(w, SEQ);
        if (this.#mayClaim(group)) break;
        const left = deadline - performance.now();
        if (left <= 0) break;
        yield { waiter: this.#block.waiter, view: w, index: SEQ, expected: seq, timeout: left };
      }
      if (!this.#lock.tryAcquire()) yield* this.#lock.acquiring(undefined);
      const timedOut = deadline - performance.now() <= 0;
      notified = this.#claim(group, timedOut);
      if (notified || timedOut) break;
      this.#lock.release(); // another waiter of the group took the permit first
    }
    Atomics.sub(w, SLEEPERS, 1);
    this.#lock.restore(depth);
    return notified;
  }

  wait(timeout: number | undefined): Promise<boolean> {
    return runAsync(this.#waiting(timeout));
  }

  waitSync(timeout: number | undefined): boolean {
    return runSync(this.#waiting(timeout));
  }

  notify(n: number): void {
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

  notifyAll(): void {
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
    if (Atomics.load(this.#w, SLEEPERS) > 0) this.#block.waiter.wake(this.#w, SEQ, ALL);
  }

  reduce(transport: Transport): BlockRef {
    checkTransport(this.#block.ref, transport, "Condition");
    return this.#block.ref;
  }
}

// Barrier words: arrivals this round, the round number, the round that broke (+1), and a counter
// bumped on every change that waiters sleep on, so that no change can slip between a check and a wait.
const COUNT = 0;
const GEN = 1;
const BROKEN = 2;
const EPOCH = 3;

/** What a Barrier sends to another process. */
export interface AtomicBarrierState {
  ref: BlockRef;
  mutex: AtomicSemLockState;
}

/** A barrier's words and the lock that guards them. */
export class AtomicBarrier implements BarrierFlavor {
  readonly #parties: number;
  readonly #mutex: AtomicSemLock;
  readonly #block: Block;
  readonly #w: Int32Array;

  /** A new barrier for `parties` in the memory `memory`, or the one another process sent. */
  constructor(parties: number, from: SharedMemoryKind | AtomicBarrierState) {
    this.#parties = parties;
    const made = typeof from === "string";
    this.#mutex = made ? AtomicSemLock.create("Lock", 1, 1, from) : AtomicSemLock.attach("Lock", from.mutex);
    this.#block = made ? allocate(16, from) : attach(from.ref);
    this.#w = new Int32Array(this.#block.buffer, this.#block.offset, 4);
  }

  nWaiting(): number {
    return Atomics.load(this.#w, COUNT);
  }

  broken(): boolean {
    return Atomics.load(this.#w, BROKEN) === Atomics.load(this.#w, GEN) + 1;
  }

  async wait(timeout: number | undefined, action: (() => unknown) | undefined): Promise<number> {
    const w = this.#w;
    const mutex = this.#mutex;
    await mutex.acquire(true, undefined, undefined);
    if (this.broken()) {
      mutex.release();
      throw new BrokenBarrierError("the barrier is broken");
    }
    const gen = Atomics.load(w, GEN);
    const index = Atomics.add(w, COUNT, 1);
    if (index + 1 === this.#parties) {
      try {
        await action?.();
      } catch (error) {
        this.#break();
        mutex.release();
        throw error;
      }
      Atomics.store(w, COUNT, 0);
      Atomics.add(w, GEN, 1);
      this.#changed();
      mutex.release();
      return index;
    }
    mutex.release();
    const deadline = deadlineFor(timeout);
    for (;;) {
      const epoch = Atomics.load(w, EPOCH);
      if (Atomics.load(w, BROKEN) === gen + 1) throw new BrokenBarrierError("the barrier was broken while waiting");
      if (Atomics.load(w, GEN) !== gen) return index;
      const left = deadline - performance.now();
      if (left <= 0) {
        await mutex.acquire(true, undefined, undefined);
        if (Atomics.load(w, GEN) === gen) this.#break();
        mutex.release();
        continue;
      }
      await this.#block.waiter.waitAsync(w, EPOCH, epoch, left);
    }
  }

  #changed(): void {
    Atomics.add(this.#w, EPOCH, 1);
    this.#block.waiter.wake(this.#w, EPOCH, ALL);
  }

  abort(): void {
    this.#mutex.acquireSync(true, undefined);
    this.#break();
    this.#mutex.release();
  }

  reset(): void {
    const w = this.#w;
    this.#mutex.acquireSync(true, undefined);
    if (Atomics.load(w, COUNT) > 0 || this.broken()) Atomics.store(w, BROKEN, Atomics.load(w, GEN) + 1);
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

  reduce(transport: Transport): AtomicBarrierState {
    checkTransport(this.#block.ref, transport, "Barrier");
    return { ref: this.#block.ref, mutex: this.#mutex.reduce(transport) };
  }
}
