/**
 * The objects a `Manager` server holds for its clients (Python's "referents"), and who is calling
 * them. This file has the containers (a dict, a list, a namespace, typed values and arrays);
 * sync-referents.ts the queue and the synchronization primitives; builtins.ts the table of both.
 * They live only in the server; clients reach them through proxies, one method call per message.
 *
 * Blocking methods park on a `WaitList` and honour the caller's timeout and abort signal. Which
 * client calls is read from `callContext()` at the start of a method (before any await): RLock and
 * Condition use it as the owner, as Python's server uses the calling thread.
 */
import { isDeepStrictEqual } from "node:util";
import { type Typecode, checkScalar, checkTypecode, classes } from "../shm/typecodes.js";

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
export interface Blocking {
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
