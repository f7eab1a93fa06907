/**
 * The Manager's queue and synchronization referents: a queue, locks, a semaphore, an event, a
 * condition and a barrier (the containers are in referents.ts). Blocking methods park on a
 * `WaitList` and honour the caller's timeout and abort signal; RLock and Condition take the caller
 * from `callContext()` as their owner.
 */
import { BrokenBarrierError, Empty, Full, ProcessError } from "../../errors.js";
import { WaitList, deadlineFor } from "../waitlist.js";
import { type Blocking, type ClientAware, callContext } from "./referents.js";

/** `manager.Queue(maxsize)` and `JoinableQueue`: FIFO with Python's blocking rules. */
export class QueueReferent {
  #items: unknown[] = [];
  #head = 0;
  #maxsize: number;
  #notEmpty = new WaitList();
  #notFull = new WaitList();
  #allDone = new WaitList();
  #unfinished = 0;

  constructor(maxsize = 0) {
    if (!Number.isInteger(maxsize)) throw new TypeError(`maxsize must be an integer (got ${maxsize})`);
    this.#maxsize = maxsize;
  }
  qsize(): number {
    return this.#items.length - this.#head;
  }
  empty(): boolean {
    return this.qsize() === 0;
  }
  full(): boolean {
    return this.#maxsize > 0 && this.qsize() >= this.#maxsize;
  }
  async put(item: unknown, options: Blocking = {}): Promise<void> {
    const { signal } = callContext();
    const deadline = deadlineFor(options.timeout);
    while (this.full()) {
      if (options.block === false || !(await this.#notFull.wait(deadline, signal))) {
        throw new Full(
          options.block === false ? "the queue is full" : `the queue stayed full for ${options.timeout} ms`,
        );
      }
    }
    this.#items.push(item);
    this.#unfinished++;
    this.#notEmpty.wakeOne();
  }
  putNowait(item: unknown): Promise<void> {
    return this.put(item, { block: false });
  }
  async get(options: Blocking = {}): Promise<unknown> {
    const { signal } = callContext();
    const deadline = deadlineFor(options.timeout);
    while (this.empty()) {
      if (options.block === false || !(await this.#notEmpty.wait(deadline, signal))) {
        throw new Empty(
          options.block === false ? "the queue is empty" : `the queue stayed empty for ${options.timeout} ms`,
        );
      }
    }
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#notFull.wakeOne();
    // someone else may be waiting too and an item may remain
    if (!this.empty()) this.#notEmpty.wakeOne();
    return item;
  }
  getNowait(): Promise<unknown> {
    return this.get({ block: false });
  }
  taskDone(): void {
    if (this.#unfinished <= 0) throw new RangeError("taskDone() called more times than there were items");
    if (--this.#unfinished === 0) this.#allDone.wakeAll();
  }
  async join(): Promise<void> {
    const { signal } = callContext();
    while (this.#unfinished > 0) await this.#allDone.wait(Number.POSITIVE_INFINITY, signal);
  }
}

/** `manager.Lock()`: released for its holder if that client disconnects, so no one waits forever. */
export class LockReferent implements ClientAware {
  protected holder = 0;
  protected count = 0;
  protected waiters = new WaitList();

  async acquire(options: Blocking = {}): Promise<boolean> {
    const { caller, signal } = callContext();
    return this.acquireFor(caller, options, signal);
  }
  /** @internal */
  async acquireFor(caller: number, options: Blocking, signal?: AbortSignal): Promise<boolean> {
    const deadline = deadlineFor(options.timeout);
    for (;;) {
      if (this.tryAcquire(caller)) return true;
      if (options.block === false || !(await this.waiters.wait(deadline, signal))) return false;
    }
  }
  protected tryAcquire(caller: number): boolean {
    if (this.count > 0) return false;
    this.holder = caller;
    this.count = 1;
    return true;
  }
  release(): void {
    if (this.count === 0) throw new ProcessError("cannot release an unlocked lock");
    this.count = 0;
    this.holder = 0;
    this.waiters.wakeOne();
  }
  locked(): boolean {
    return this.count > 0;
  }
  /** @internal For Condition: whether `caller` holds the lock (a plain Lock: whether anyone does). */
  ownedBy(_caller: number): boolean {
    return this.count > 0;
  }
  /** @internal For Condition: releases completely and returns what to restore. */
  releaseAll(_caller: number): number {
    this.release();
    return 1;
  }
  /** @internal */
  async restore(caller: number, count: number): Promise<void> {
    await this.acquireFor(caller, {});
    this.count = count;
  }
  clientGone(caller: number): void {
    if (this.count > 0 && this.holder === caller) {
      this.count = 0;
      this.holder = 0;
      this.waiters.wakeOne();
    }
  }
}

/** `manager.RLock()`: owned by the client (process) that acquired it, re-entrant. */
export class RLockReferent extends LockReferent {
  protected override tryAcquire(caller: number): boolean {
    if (this.count > 0 && this.holder !== caller) return false;
    this.holder = caller;
    this.count++;
    return true;
  }
  override release(): void {
    const { caller } = callContext();
    if (this.count === 0 || this.holder !== caller) {
      throw new ProcessError("cannot release un-acquired lock");
    }
    if (--this.count === 0) {
      this.holder = 0;
      this.waiters.wakeOne();
    }
  }
  override ownedBy(caller: number): boolean {
    return this.count > 0 && this.holder === caller;
  }
  override releaseAll(caller: number): number {
    const count = this.count;
    if (!this.ownedBy(caller)) throw new ProcessError("cannot release an RLock this process does not hold");
    this.count = 0;
    this.holder = 0;
    this.waiters.wakeOne();
    return count;
  }
}

/** `manager.Semaphore(value)` and `BoundedSemaphore(value)`. */
export class SemaphoreReferent {
  #value: number;
  #bound: number | undefined;
  #waiters = new WaitList();
  constructor(value = 1, bounded = false) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`value must be an integer >= 0 (got ${value})`);
    this.#value = value;
    this.#bound = bounded ? value : undefined;
  }
  async acquire(options: Blocking = {}): Promise<boolean> {
    const { signal } = callContext();
    const deadline = deadlineFor(options.timeout);
    while (this.#value === 0) {
      if (options.block === false || !(await this.#waiters.wait(deadline, signal))) return false;
    }
    this.#value--;
    return true;
  }
  release(n = 1): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be an integer >= 1 (got ${n})`);
    if (this.#bound !== undefined && this.#value + n > this.#bound) {
      throw new ProcessError("semaphore released too many times");
    }
    this.#value += n;
    for (let i = 0; i < n; i++) this.#waiters.wakeOne();
  }
  getValue(): number {
    return this.#value;
  }
}

/** `manager.Event()`. */
export class EventReferent {
  #set = false;
  #waiters = new WaitList();
  set(): void {
    this.#set = true;
    this.#waiters.wakeAll();
  }
  clear(): void {
    this.#set = false;
  }
  isSet(): boolean {
    return this.#set;
  }
  async wait(timeout?: number): Promise<boolean> {
    const { signal } = callContext();
    const deadline = deadlineFor(timeout);
    while (!this.#set) if (!(await this.#waiters.wait(deadline, signal))) return this.#set;
    return true;
  }
}

/** `manager.Condition(lock?)`: over an RLock of its own, or the manager Lock/RLock given. */
export class ConditionReferent implements ClientAware {
  #lock: LockReferent;
  #waiters = new WaitList();
  /** Callers that disconnected: a wait of theirs that ends must not take the lock back for them. */
  #gone = new Set<number>();
  constructor(lock?: unknown) {
    if (lock !== undefined && !(lock instanceof LockReferent)) {
      throw new TypeError("Condition(lock) takes a Lock or RLock made by the same manager");
    }
    this.#lock = lock ?? new RLockReferent();
  }
  acquire(options: Blocking = {}): Promise<boolean> {
    const { caller, signal } = callContext();
    return this.#lock.acquireFor(caller, options, signal);
  }
  release(): void {
    this.#lock.release();
  }
  async wait(timeout?: number): Promise<boolean> {
    const { caller, signal } = callContext();
    if (!this.#lock.ownedBy(caller)) throw new ProcessError("cannot wait on an un-acquired lock");
    const saved = this.#lock.releaseAll(caller);
    try {
      return await this.#waiters.wait(deadlineFor(timeout), signal);
    } finally {
      if (!this.#gone.has(caller)) await this.#lock.restore(caller, saved);
    }
  }
  clientGone(caller: number): void {
    this.#gone.add(caller);
    // its own lock is not held by the server under an id of its own, so pass the news on
    this.#lock.clientGone(caller);
  }
  notify(n = 1): void {
    const { caller } = callContext();
    if (!this.#lock.ownedBy(caller)) throw new ProcessError("cannot notify on an un-acquired lock");
    for (let i = 0; i < n; i++) this.#waiters.wakeOne();
  }
  notifyAll(): void {
    this.notify(this.#waiters.size);
  }
}

/** `manager.Barrier(parties, { timeout })`. */
export class BarrierReferent implements ClientAware {
  #parties: number;
  #timeout: number | undefined;
  #count = 0;
  #phase = { broken: false, passed: false };
  #broken = false;
  #acting: { broken: boolean; passed: boolean } | undefined;
  #actor = 0;
  #waiters = new WaitList();
  constructor(parties: number, options: { timeout?: number } = {}) {
    if (!Number.isInteger(parties) || parties < 1)
      throw new RangeError(`parties must be an integer >= 1 (got ${parties})`);
    this.#parties = parties;
    this.#timeout = options.timeout;
  }
  /**
   * Waits for every party. With `withAction`, the last to arrive gets `{ index, runAction }` instead
   * and must call `actionDone()` (or `abort()`) before the others are released.
   */
  async wait(timeout?: number, withAction = false): Promise<number | { index: number; runAction: true }> {
    const { caller, signal } = callContext();
    const deadline = deadlineFor(timeout ?? this.#timeout);
    // a round whose action is still running is not over: arrivals belong to the next one
    while (this.#acting) {
      if (!(await this.#waiters.wait(deadline, signal))) {
        this.abort();
        throw new BrokenBarrierError("the barrier timed out while the previous round's action ran");
      }
    }
    if (this.#broken) throw new BrokenBarrierError("the barrier is broken");
    const phase = this.#phase;
    const index = this.#count++;
    if (this.#count === this.#parties) {
      if (withAction) {
        this.#acting = phase;
        this.#actor = caller;
        return { index, runAction: true };
      }
      this.#pass(phase);
      return index;
    }
    try {
      while (!phase.passed && !phase.broken) {
        if (!(await this.#waiters.wait(deadline, signal))) {
          this.abort();
          break;
        }
      }
    } catch (error) {
      this.abort();
      throw error;
    }
    if (!phase.passed) throw new BrokenBarrierError("the barrier was broken (aborted, reset, or a party timed out)");
    return index;
  }
  /** The party running the action went away: nobody will end the round, so break it. */
  clientGone(caller: number): void {
    if (this.#acting && this.#actor === caller) this.abort();
  }
  /** Ends the round whose action ran, releasing its parties. */
  actionDone(): void {
    const phase = this.#acting;
    this.#acting = undefined;
    if (phase && !phase.broken) this.#pass(phase);
    else this.#waiters.wakeAll();
  }
  #pass(phase: { broken: boolean; passed: boolean }): void {
    phase.passed = true;
    this.#phase = { broken: false, passed: false };
    this.#count = 0;
    this.#waiters.wakeAll();
  }
  abort(): void {
    this.#acting = undefined;
    this.#broken = true;
    this.#phase.broken = true;
    this.#waiters.wakeAll();
  }
  reset(): void {
    this.#acting = undefined;
    this.#phase.broken = true;
    this.#waiters.wakeAll();
    this.#phase = { broken: false, passed: false };
    this.#count = 0;
    this.#broken = false;
  }
  parties(): number {
    return this.#parties;
  }
  nWaiting(): number {
    return this.#count;
  }
  broken(): boolean {
    return this.#broken;
  }
}
