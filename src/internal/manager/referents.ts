/**
 * The objects a `Manager` server holds for its clients (Python's "referents"): a dict, a list, a
 * namespace, a queue, locks, an event, a condition, a barrier and typed values. They live only in
 * the server; clients reach them through proxies, one method call per message.
 *
 * Blocking methods park on a `WaitList` and honour the caller's timeout and abort signal. Which
 * client calls is read from `callContext()` at the start of a method (before any await): RLock and
 * Condition use it as the owner, as Python's server uses the calling thread.
 */
import { isDeepStrictEqual } from "node:util";
import { BrokenBarrierError, Empty, Full, ProcessError } from "../../errors.js";
import { type Typecode, checkScalar, checkTypecode, classes } from "../shm/typecodes.js";
import { WaitList, deadlineFor } from "../waitlist.js";

/** Who is calling, and the signal that fires if they give up or go away. */
export interface CallContext {
  caller: number;
  signal: AbortSignal;
}

const idle: CallContext = { caller: 0, signal: new AbortController().signal };
let current: CallContext = idle;

/** Runs `fn` with `context` readable through `callContext()` until its first await. */
export function withCallContext<R>(context: CallContext, fn: () => R): R {
  current = context;
  try {
    return fn();
  } finally {
    current = idle;
  }
}

/** The calling client; read it before the method's first await. */
export function callContext(): CallContext {
  return current;
}

/** Implemented by referents that hold something on a client's behalf (a lock) and let go when it disconnects. */
export interface ClientAware {
  clientGone(caller: number): void;
}

/** Options of blocking server methods, as the proxy sends them. */
interface Blocking {
  block?: boolean;
  timeout?: number;
}

function index(length: number, i: unknown, what: string): number {
  if (!Number.isInteger(i)) throw new TypeError(`${what} index must be an integer (got ${String(i)})`);
  const at = (i as number) < 0 ? length + (i as number) : (i as number);
  if (at < 0 || at >= length) throw new RangeError(`${what} index ${i} out of range (length ${length})`);
  return at;
}

function compare(a: unknown, b: unknown): number {
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

function entriesOf(value: unknown): Iterable<[unknown, unknown]> {
  if (value instanceof Map) return value;
  if (value && typeof value === "object" && Symbol.iterator in value) return value as Iterable<[unknown, unknown]>;
  if (value && typeof value === "object") return Object.entries(value);
  throw new TypeError(`update() takes a Map, an object or an iterable of [key, value] pairs (got ${typeof value})`);
}

/** `manager.dict()`: a Map (keys compare like Map keys, so use primitives). */
export class DictReferent {
  #map: Map<unknown, unknown>;
  constructor(init?: unknown) {
    this.#map = new Map(init === undefined ? [] : entriesOf(init));
  }
  get(key: unknown, fallback?: unknown): unknown {
    return this.#map.has(key) ? this.#map.get(key) : fallback;
  }
  set(key: unknown, value: unknown): void {
    this.#map.set(key, value);
  }
  has(key: unknown): boolean {
    return this.#map.has(key);
  }
  delete(key: unknown): boolean {
    return this.#map.delete(key);
  }
  size(): number {
    return this.#map.size;
  }
  keys(): unknown[] {
    return [...this.#map.keys()];
  }
  values(): unknown[] {
    return [...this.#map.values()];
  }
  entries(): [unknown, unknown][] {
    return [...this.#map.entries()];
  }
  toObject(): Record<string, unknown> {
    return Object.fromEntries(this.#map);
  }
  toMap(): Map<unknown, unknown> {
    return new Map(this.#map);
  }
  clear(): void {
    this.#map.clear();
  }
  pop(key: unknown, ...fallback: unknown[]): unknown {
    if (this.#map.has(key)) {
      const value = this.#map.get(key);
      this.#map.delete(key);
      return value;
    }
    if (fallback.length) return fallback[0];
    throw new RangeError(`key ${JSON.stringify(key) ?? String(key)} not found (pass a default to pop())`);
  }
  popitem(): [unknown, unknown] {
    const last = [...this.#map.keys()].pop();
    if (this.#map.size === 0) throw new RangeError("popitem(): the dict is empty");
    const value = this.#map.get(last);
    this.#map.delete(last);
    return [last, value];
  }
  setdefault(key: unknown, value: unknown): unknown {
    if (!this.#map.has(key)) this.#map.set(key, value);
    return this.#map.get(key);
  }
  update(other: unknown): void {
    for (const [k, v] of entriesOf(other)) this.#map.set(k, v);
  }
}

/** `manager.list()`: an array with Python's list methods (negative indexes count from the end). */
export class ListReferent {
  #items: unknown[];
  constructor(init?: unknown) {
    this.#items = init === undefined ? [] : [...(init as Iterable<unknown>)];
  }
  append(item: unknown): void {
    this.#items.push(item);
  }
  extend(items: unknown): void {
    for (const item of items as Iterable<unknown>) this.#items.push(item);
  }
  insert(at: number, item: unknown): void {
    const n = this.#items.length;
    const i = at < 0 ? Math.max(0, n + at) : Math.min(at, n);
    this.#items.splice(i, 0, item);
  }
  get(i: number): unknown {
    return this.#items[index(this.#items.length, i, "list")];
  }
  set(i: number, item: unknown): void {
    this.#items[index(this.#items.length, i, "list")] = item;
  }
  pop(i = -1): unknown {
    if (this.#items.length === 0) throw new RangeError("pop from an empty list");
    return this.#items.splice(index(this.#items.length, i, "list"), 1)[0];
  }
  remove(item: unknown): void {
    this.#items.splice(this.index(item), 1);
  }
  index(item: unknown, start = 0, end = this.#items.length): number {
    for (let i = Math.max(0, start); i < Math.min(end, this.#items.length); i++) {
      if (isDeepStrictEqual(this.#items[i], item)) return i;
    }
    throw new RangeError(`${JSON.stringify(item) ?? String(item)} is not in the list`);
  }
  includes(item: unknown): boolean {
    return this.#items.some((x) => isDeepStrictEqual(x, item));
  }
  count(item: unknown): number {
    return this.#items.filter((x) => isDeepStrictEqual(x, item)).length;
  }
  reverse(): void {
    this.#items.reverse();
  }
  sort(options: { reverse?: boolean } = {}): void {
    this.#items.sort(options.reverse ? (a, b) => compare(b, a) : compare);
  }
  clear(): void {
    this.#items.length = 0;
  }
  size(): number {
    return this.#items.length;
  }
  slice(start?: number, end?: number): unknown[] {
    return this.#items.slice(start, end);
  }
  splice(start: number, deleteCount: number, ...items: unknown[]): unknown[] {
    return this.#items.splice(start, deleteCount, ...items);
  }
  repeat(times: number): void {
    if (!Number.isInteger(times)) throw new TypeError(`repeat() takes an integer (got ${times})`);
    const copy = this.#items.slice();
    this.#items.length = 0;
    for (let i = 0; i < times; i++) this.#items.push(...copy);
  }
  toArray(): unknown[] {
    return this.#items.slice();
  }
}

/** `manager.Namespace()`: named attributes. */
export class NamespaceReferent {
  #values = new Map<string, unknown>();
  constructor(init?: Record<string, unknown>) {
    for (const [k, v] of Object.entries(init ?? {})) this.#values.set(k, v);
  }
  get(name: string): unknown {
    return this.#values.get(name);
  }
  set(name: string, value: unknown): void {
    if (typeof name !== "string")
      throw new TypeError(`a namespace attribute name must be a string (got ${typeof name})`);
    this.#values.set(name, value);
  }
  has(name: string): boolean {
    return this.#values.has(name);
  }
  delete(name: string): boolean {
    return this.#values.delete(name);
  }
  toObject(): Record<string, unknown> {
    return Object.fromEntries(this.#values);
  }
  describe(): string {
    const shown = [...this.#values].filter(([k]) => !k.startsWith("_"));
    return `Namespace(${shown.map(([k, v]) => `${k}=${JSON.stringify(v) ?? String(v)}`).join(", ")})`;
  }
}

/** `manager.Value(typecode, value)`: one number stored with the typecode's width. */
export class ValueReferent {
  #cell: { [i: number]: number | bigint };
  #typecode: Typecode;
  constructor(typecode: unknown, value: unknown) {
    checkTypecode(typecode);
    this.#typecode = typecode;
    const Cls = classes[typecode] as unknown as new (n: number) => { [i: number]: number | bigint };
    this.#cell = new Cls(1);
    if (value !== undefined) this.set(value);
  }
  get(): number | bigint {
    return this.#cell[0]!;
  }
  set(value: unknown): void {
    checkScalar(this.#typecode, value, "value");
    this.#cell[0] = value as number;
  }
  typecode(): string {
    return this.#typecode;
  }
}

type Cells = { [i: number]: number | bigint; length: number; slice(a?: number, b?: number): ArrayLike<unknown> };

/** `manager.Array(typecode, sizeOrItems)`: a fixed-length typed array. */
export class ArrayReferent {
  #items: Cells;
  #typecode: Typecode;
  constructor(typecode: unknown, sizeOrItems: unknown) {
    checkTypecode(typecode);
    this.#typecode = typecode;
    const items = typeof sizeOrItems === "number" ? undefined : [...(sizeOrItems as Iterable<unknown>)];
    const length = items ? items.length : (sizeOrItems as number);
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`size must be an integer >= 0 (got ${length})`);
    if (items) for (const [i, x] of items.entries()) checkScalar(typecode, x, `items[${i}]`);
    const Cls = classes[typecode] as unknown as new (n: number) => Cells;
    this.#items = new Cls(length);
    if (items) for (const [i, x] of items.entries()) this.#items[i] = x as number;
  }
  get(i: number): number | bigint {
    return this.#items[index(this.#items.length, i, "array")]!;
  }
  set(i: number, value: unknown): void {
    const at = index(this.#items.length, i, "array");
    checkScalar(this.#typecode, value, "value");
    this.#items[at] = value as number;
  }
  size(): number {
    return this.#items.length;
  }
  slice(start?: number, end?: number): unknown[] {
    return Array.from(this.#items.slice(start, end));
  }
  toArray(): unknown[] {
    return Array.from(this.#items.slice());
  }
}

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

/** What `Manager`'s typeids make, by name. */
export const builtinTypes: Record<string, (...args: any[]) => object> = {
  dict: (init?: unknown) => new DictReferent(init),
  list: (init?: unknown) => new ListReferent(init),
  Namespace: (init?: Record<string, unknown>) => new NamespaceReferent(init),
  Value: (typecode: unknown, value: unknown) => new ValueReferent(typecode, value),
  Array: (typecode: unknown, sizeOrItems: unknown) => new ArrayReferent(typecode, sizeOrItems),
  Queue: (maxsize?: number) => new QueueReferent(maxsize),
  JoinableQueue: (maxsize?: number) => new QueueReferent(maxsize),
  Lock: () => new LockReferent(),
  RLock: () => new RLockReferent(),
  Semaphore: (value?: number) => new SemaphoreReferent(value),
  BoundedSemaphore: (value?: number) => new SemaphoreReferent(value, true),
  Event: () => new EventReferent(),
  Condition: (lock?: unknown) => new ConditionReferent(lock),
  Barrier: (parties: number, options?: { timeout?: number }) => new BarrierReferent(parties, options),
};
