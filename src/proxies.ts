/**
 * Proxies: a reference to one object held by a manager server, like Python's `BaseProxy` and the
 * proxies of `multiprocessing.managers`. Each method is one call to the server, through the
 * manager's connection (internal/manager/client.ts); a proxy sent to another process arrives as a
 * proxy of the same object.
 */
import { inspect } from "node:util";
import { ClosedError } from "./errors.js";
import { type Reduced, encode, reduce, registerRebuilder } from "./internal/wire/codec.js";
import { ManagerClient, clientKey, shutDown } from "./internal/manager/client.js";
import { type Token, resultToken } from "./internal/manager/server.js";
import { formatAddress } from "./internal/wire/sockets.js";
import { checkOptionNames, checkTimeout, checkWaitOptions, optionNames } from "./internal/validate.js";
import type { WaitOptions } from "./util.js";

/** Options of blocking proxy methods: `{ block, timeout, signal }`. */
export type ProxyWaitOptions = WaitOptions;

const proxyClasses = new Map<string, new (token: Token) => BaseProxy>();

/**
 * What every proxy is: a reference to one object on a manager server. It can be passed to other
 * processes (as a Process argument, a pool task argument, in a queue, or stored in another proxy)
 * and arrives as a proxy of the same object.
 */
export class BaseProxy {
  /** @internal Which object, on which server. */
  readonly _token: Token;

  /** @internal Proxies come from a manager (`manager.dict()`, `manager.create(...)`). */
  constructor(token: Token) {
    this._token = token;
  }

  /**
   * Calls `method` on the object in the server with `args`; resolves with its result. A method the
   * type does not expose rejects with RemoteError; an error the method throws arrives with its class.
   */
  _callMethod(
    method: string,
    args: unknown[] = [],
    options: { signal?: AbortSignal; blocking?: boolean } = {},
  ): Promise<any> {
    const key = (this.#key ??= clientKey(this._token.address, this._token.authkey));
    if (shutDown.has(key)) {
      return Promise.reject(new ClosedError(`the manager that owns this ${this._token.typeid} was shut down`));
    }
    let encoded: ReturnType<typeof encode>;
    try {
      encoded = encode(args, "bytes", `${this._token.typeid}.${method}() arguments`);
    } catch (error) {
      return Promise.reject(error);
    }
    const client = ManagerClient.for(this._token.address, this._token.authkey, key);
    // a call not awaited (a set(), an append()) still reaches the server before a child exits
    return client.request(
      { k: "call", id: this._token.id, m: method, a: encoded.value, h: encoded.changed },
      options.signal,
      !options.blocking,
    );
  }

  /** Which manager connection (`clientKey()`), computed once. */
  #key: string | undefined;

  /** @internal Sends the proxy's token (manager address, object id, authkey); the receiver connects to the same object. */
  [reduce](): Reduced {
    return { kind: "mpts.ManagerProxy", state: this._token };
  }

  /** Shows the type, the object id and the manager's address. */
  [inspect.custom](): string {
    return `${this.constructor.name} { typeid: '${this._token.typeid}', id: '${this._token.id}', manager: ${formatAddress(this._token.address)} }`;
  }
}

/** @internal A proxy of the object `token` names. */
export function proxyFor(token: Token): BaseProxy {
  return makeProxy(token);
}

/** @internal A proxy of the object `token` names, of its registered class or an AutoProxy. */
export function makeProxy(token: Token): BaseProxy {
  const Cls = proxyClasses.get(token.proxy);
  return Cls ? new Cls(token) : autoProxy(token);
}

registerRebuilder("mpts.ManagerProxy", (state) => makeProxy(state as Token));

// a method that returned an object kept on the server comes back as a proxy of it
ManagerClient.adopt = (value, authkey) => {
  const token = { ...value, authkey };
  delete (token as Record<string, unknown>)[resultToken];
  return makeProxy(token);
};

function timeoutOptions(timeout: number | { timeout?: number; signal?: AbortSignal } | undefined): {
  timeout?: number;
  signal?: AbortSignal;
} {
  const options = typeof timeout === "object" && timeout !== null ? timeout : { timeout };
  checkTimeout(options.timeout, "timeout");
  return options;
}

/** A proxy of a `manager.dict()`: a Map on the server. Keys compare like Map keys (use primitives). */
export class DictProxy<K = string, V = unknown> extends BaseProxy {
  /** The value for `key`, or `fallback` (default undefined) when absent. */
  get(key: K): Promise<V | undefined>;
  get(key: K, fallback: V): Promise<V>;
  get(key: K, ...fallback: [V?]): Promise<V | undefined> {
    return this._callMethod("get", [key, ...fallback]);
  }
  /** Sets `key` to `value`. */
  set(key: K, value: V): Promise<void> {
    return this._callMethod("set", [key, value]);
  }
  /** Whether `key` is present. */
  has(key: K): Promise<boolean> {
    return this._callMethod("has", [key]);
  }
  /** Removes `key`; resolves true if it was present. */
  delete(key: K): Promise<boolean> {
    return this._callMethod("delete", [key]);
  }
  /** The number of entries (Python's `len(d)`). */
  size(): Promise<number> {
    return this._callMethod("size");
  }
  /** The keys, in insertion order. */
  keys(): Promise<K[]> {
    return this._callMethod("keys");
  }
  /** The values, in insertion order. */
  values(): Promise<V[]> {
    return this._callMethod("values");
  }
  /** The `[key, value]` pairs, in insertion order. */
  entries(): Promise<[K, V][]> {
    return this._callMethod("entries");
  }
  /** A plain object copy (keys become strings). */
  toObject(): Promise<Record<string, V>> {
    return this._callMethod("toObject");
  }
  /** A Map copy. */
  toMap(): Promise<Map<K, V>> {
    return this._callMethod("toMap");
  }
  /** Removes every entry. */
  clear(): Promise<void> {
    return this._callMethod("clear");
  }
  /** Removes `key` and resolves with its value; without a fallback a missing key rejects with RangeError. */
  pop(key: K, ...fallback: [V?]): Promise<V> {
    return this._callMethod("pop", [key, ...fallback]);
  }
  /** Removes and returns the last inserted pair; rejects with RangeError when empty. */
  popitem(): Promise<[K, V]> {
    return this._callMethod("popitem");
  }
  /** The value for `key`, setting it to `value` first if absent. */
  setdefault(key: K, value: V): Promise<V> {
    return this._callMethod("setdefault", [key, value]);
  }
  /** Sets every pair of `other` (a Map, an object, or `[key, value]` pairs), like Python's `|=`. */
  update(other: Map<K, V> | Iterable<readonly [K, V]> | Record<string, V>): Promise<void> {
    const pairs =
      other instanceof Map ? [...other] : Symbol.iterator in Object(other) ? [...(other as Iterable<[K, V]>)] : other;
    return this._callMethod("update", [pairs]);
  }
  /** Iterates over a snapshot of the entries. */
  async *[Symbol.asyncIterator](): AsyncIterator<[K, V]> {
    yield* await this.entries();
  }
}

/** A proxy of a `manager.list()`: an array on the server with Python's list methods. */
export class ListProxy<T = unknown> extends BaseProxy {
  /** Adds `item` at the end. */
  append(item: T): Promise<void> {
    return this._callMethod("append", [item]);
  }
  /** Adds every item of `items` at the end (Python's `+=`). */
  extend(items: Iterable<T>): Promise<void> {
    return this._callMethod("extend", [[...items]]);
  }
  /** Inserts `item` before index `at`. */
  insert(at: number, item: T): Promise<void> {
    return this._callMethod("insert", [at, item]);
  }
  /** The item at `index` (negative counts from the end); RangeError when out of range. */
  get(index: number): Promise<T> {
    return this._callMethod("get", [index]);
  }
  /** Replaces the item at `index`. */
  set(index: number, item: T): Promise<void> {
    return this._callMethod("set", [index, item]);
  }
  /** Removes and returns the item at `index` (default: the last). */
  pop(index?: number): Promise<T> {
    return this._callMethod("pop", index === undefined ? [] : [index]);
  }
  /** Removes the first item equal to `item` (deep equality); RangeError when there is none. */
  remove(item: T): Promise<void> {
    return this._callMethod("remove", [item]);
  }
  /** The index of the first item equal to `item`; RangeError when there is none. */
  index(item: T, start?: number, end?: number): Promise<number> {
    return this._callMethod("index", [
      item,
      ...(start === undefined ? [] : [start]),
      ...(end === undefined ? [] : [end]),
    ]);
  }
  /** Whether an item equals `item`. */
  includes(item: T): Promise<boolean> {
    return this._callMethod("includes", [item]);
  }
  /** How many items equal `item`. */
  count(item: T): Promise<number> {
    return this._callMethod("count", [item]);
  }
  /** Reverses the list in place. */
  reverse(): Promise<void> {
    return this._callMethod("reverse");
  }
  /** Sorts in place: numbers by value, strings by code unit. */
  sort(options: { reverse?: boolean } = {}): Promise<void> {
    checkOptionNames(options, sortOptionNames, "list.sort()");
    return this._callMethod("sort", [options]);
  }
  /** Removes every item. */
  clear(): Promise<void> {
    return this._callMethod("clear");
  }
  /** The number of items (Python's `len(l)`). */
  size(): Promise<number> {
    return this._callMethod("size");
  }
  /** A copy of `[start, end)`, like `Array.prototype.slice`. */
  slice(start?: number, end?: number): Promise<T[]> {
    return this._callMethod("slice", [start, end]);
  }
  /** `Array.prototype.splice` on the server's list; resolves with the removed items. */
  splice(start: number, deleteCount: number, ...items: T[]): Promise<T[]> {
    return this._callMethod("splice", [start, deleteCount, ...items]);
  }
  /** Repeats the contents `times` times in place (Python's `*=`). */
  repeat(times: number): Promise<void> {
    return this._callMethod("repeat", [times]);
  }
  /** A copy of the list followed by `items` (Python's `+`, which returns a plain list). */
  async concat(items: Iterable<T>): Promise<T[]> {
    return [...(await this.toArray()), ...items];
  }
  /** A copy of the whole list. */
  toArray(): Promise<T[]> {
    return this._callMethod("toArray");
  }
  /** Iterates over a snapshot of the list. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* await this.toArray();
  }
}

/** A proxy of a `manager.Namespace()`: named attributes. */
export class NamespaceProxy extends BaseProxy {
  /** The attribute `name` (undefined when unset). */
  get<T = unknown>(name: string): Promise<T> {
    return this._callMethod("get", [name]);
  }
  /** Sets the attribute `name`. */
  set(name: string, value: unknown): Promise<void> {
    return this._callMethod("set", [name, value]);
  }
  /** Whether the attribute `name` is set. */
  has(name: string): Promise<boolean> {
    return this._callMethod("has", [name]);
  }
  /** Removes the attribute `name`; resolves true if it was set. */
  delete(name: string): Promise<boolean> {
    return this._callMethod("delete", [name]);
  }
  /** Every attribute as a plain object. */
  toObject(): Promise<Record<string, unknown>> {
    return this._callMethod("toObject");
  }
  /** Python's `repr`: `Namespace(name="Bob")`, hiding names that start with "_". */
  describe(): Promise<string> {
    return this._callMethod("describe");
  }
}

/** A proxy of a `manager.Value(typecode, value)`. */
export class ValueProxy<T = number> extends BaseProxy {
  /** The current value. */
  get(): Promise<T> {
    return this._callMethod("get");
  }
  /** Stores `value` (TypeError when it does not fit the typecode's type). */
  set(value: T): Promise<void> {
    return this._callMethod("set", [value]);
  }
}

/** A proxy of a `manager.Array(typecode, sizeOrItems)`: fixed length. */
export class ArrayProxy<T = number> extends BaseProxy {
  /** The item at `index` (negative counts from the end). */
  get(index: number): Promise<T> {
    return this._callMethod("get", [index]);
  }
  /** Stores `value` at `index`. */
  set(index: number, value: T): Promise<void> {
    return this._callMethod("set", [index, value]);
  }
  /** The length. */
  size(): Promise<number> {
    return this._callMethod("size");
  }
  /** A copy of `[start, end)`. */
  slice(start?: number, end?: number): Promise<T[]> {
    return this._callMethod("slice", [start, end]);
  }
  /** A copy of every item. */
  toArray(): Promise<T[]> {
    return this._callMethod("toArray");
  }
}

const sortOptionNames = optionNames<NonNullable<Parameters<ListProxy["sort"]>[0]>>({ reverse: true });

/** A proxy of a `manager.Queue(maxsize)`: FIFO held by the server, so it outlives its creator. */
export class QueueProxy<T = unknown> extends BaseProxy {
  /** Adds `item`, waiting while the queue is full; rejects with Full after `timeout` or at once with `block: false`. */
  put(item: T, options?: ProxyWaitOptions): Promise<void> {
    const { block, timeout, signal } = checkWaitOptions(options ?? {}, "queue.put()");
    return this._callMethod("put", [item, { block, timeout }], { signal, blocking: block });
  }
  /** `put(item, { block: false })`. */
  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }
  /** Takes the oldest item, waiting while empty; rejects with Empty after `timeout` or at once with `block: false`. */
  get(options?: ProxyWaitOptions): Promise<T> {
    const { block, timeout, signal } = checkWaitOptions(options ?? {}, "queue.get()");
    return this._callMethod("get", [{ block, timeout }], { signal, blocking: true });
  }
  /** `get({ block: false })`. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }
  /** The exact number of items waiting. */
  qsize(): Promise<number> {
    return this._callMethod("qsize");
  }
  /** Whether no item is waiting. */
  empty(): Promise<boolean> {
    return this._callMethod("empty");
  }
  /** Whether the queue holds `maxsize` items. */
  full(): Promise<boolean> {
    return this._callMethod("full");
  }
}

/** A proxy of a `manager.JoinableQueue(maxsize)`. */
export class JoinableQueueProxy<T = unknown> extends QueueProxy<T> {
  /** Marks one item got as processed; RangeError when called more often than items were put. */
  taskDone(): Promise<void> {
    return this._callMethod("taskDone");
  }
  /** Resolves when every item put has been marked with `taskDone()`. */
  join(options: { signal?: AbortSignal } = {}): Promise<void> {
    checkOptionNames(options, joinOptionNames, "queue.join()");
    return this._callMethod("join", [], { signal: options.signal, blocking: true });
  }
}

const joinOptionNames = optionNames<NonNullable<Parameters<JoinableQueueProxy["join"]>[0]>>({ signal: true });

/**
 * A proxy of a `manager.Lock()`. If the process holding it disconnects (exits or dies), the server
 * releases it, so no other process waits forever.
 */
export class LockProxy extends BaseProxy {
  /** Acquires the lock; resolves false after `timeout` or at once with `block: false` if it is held. */
  acquire(options?: ProxyWaitOptions): Promise<boolean> {
    const { block, timeout, signal } = checkWaitOptions(options ?? {}, "acquire()");
    return this._callMethod("acquire", [{ block, timeout }], { signal, blocking: true });
  }
  /** Releases the lock. */
  release(): Promise<void> {
    return this._callMethod("release");
  }
  /** Runs `fn` holding the lock, releasing it afterwards (Python's `with lock:`). */
  async withLock<R>(fn: () => R): Promise<Awaited<R>> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      await this.release();
    }
  }
}

/** A proxy of a `manager.RLock()`: re-entrant, owned by the process that acquired it. */
export class RLockProxy extends LockProxy {}

/** A proxy of a `manager.Semaphore(value)` or `BoundedSemaphore(value)`. */
export class SemaphoreProxy extends LockProxy {
  /** Adds `n` (default 1); a BoundedSemaphore rejects with RangeError past its initial value. */
  override release(n = 1): Promise<void> {
    return this._callMethod("release", [n]);
  }
  /** The current value. */
  getValue(): Promise<number> {
    return this._callMethod("getValue");
  }
}

/** A proxy of a `manager.Event()`. */
export class EventProxy extends BaseProxy {
  /** Sets the flag and wakes every waiter. */
  set(): Promise<void> {
    return this._callMethod("set");
  }
  /** Clears the flag. */
  clear(): Promise<void> {
    return this._callMethod("clear");
  }
  /** Whether the flag is set. */
  isSet(): Promise<boolean> {
    return this._callMethod("isSet");
  }
  /** Waits until the flag is set (true) or `timeout` ms pass (false). */
  wait(timeout?: number | { timeout?: number; signal?: AbortSignal }): Promise<boolean> {
    const options = timeoutOptions(timeout);
    return this._callMethod("wait", [options.timeout], { signal: options.signal, blocking: true });
  }
}

/** A proxy of a `manager.Condition(lock?)`. */
export class ConditionProxy extends LockProxy {
  /** Releases the lock, waits for a notify (true) or `timeout` (false), and re-acquires the lock. */
  wait(timeout?: number | { timeout?: number; signal?: AbortSignal }): Promise<boolean> {
    const options = timeoutOptions(timeout);
    return this._callMethod("wait", [options.timeout], { signal: options.signal, blocking: true });
  }
  /** Waits until `predicate()` is truthy, re-checking after each notify; resolves with its last value. */
  async waitFor<R>(predicate: () => R | Promise<R>, timeout?: number): Promise<R> {
    checkTimeout(timeout, "timeout");
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeout;
    let result = await predicate();
    while (!result) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await this.wait(left === Number.POSITIVE_INFINITY ? undefined : left);
      result = await predicate();
    }
    return result;
  }
  /** Wakes up to `n` waiters (the lock must be held). */
  notify(n = 1): Promise<void> {
    return this._callMethod("notify", [n]);
  }
  /** Wakes every waiter (the lock must be held). */
  notifyAll(): Promise<void> {
    return this._callMethod("notifyAll");
  }
}

/** A proxy of a `manager.Barrier(parties)`. */
export class BarrierProxy extends BaseProxy {
  /** Waits until `parties` callers wait; resolves with this caller's index. BrokenBarrierError if broken. */
  wait(timeout?: number | { timeout?: number; signal?: AbortSignal }): Promise<number> {
    const options = timeoutOptions(timeout);
    return this._callMethod("wait", [options.timeout], { signal: options.signal, blocking: true });
  }
  /** Breaks the barrier: current and later waiters get BrokenBarrierError. */
  abort(): Promise<void> {
    return this._callMethod("abort");
  }
  /** Returns the barrier to its initial state; current waiters get BrokenBarrierError. */
  reset(): Promise<void> {
    return this._callMethod("reset");
  }
  /** How many callers the barrier waits for. */
  parties(): Promise<number> {
    return this._callMethod("parties");
  }
  /** How many callers wait now. */
  nWaiting(): Promise<number> {
    return this._callMethod("nWaiting");
  }
  /** Whether the barrier is broken. */
  broken(): Promise<boolean> {
    return this._callMethod("broken");
  }
}

for (const [kind, cls] of Object.entries({
  dict: DictProxy,
  list: ListProxy,
  Namespace: NamespaceProxy,
  Value: ValueProxy,
  Array: ArrayProxy,
  Queue: QueueProxy,
  JoinableQueue: JoinableQueueProxy,
  Lock: LockProxy,
  RLock: RLockProxy,
  Semaphore: SemaphoreProxy,
  Event: EventProxy,
  Condition: ConditionProxy,
  Barrier: BarrierProxy,
})) {
  proxyClasses.set(kind, cls as new (token: Token) => BaseProxy);
}

/**
 * A proxy of a registered type: each exposed method of `T`, returning a promise. An object with a
 * `next` method (a generator) can be iterated with `for await`.
 */
export type AutoProxy<T> = BaseProxy & {
  [K in keyof T as T[K] extends (...args: any[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
} & AsyncIterable<any>;

function autoProxy(token: Token): BaseProxy {
  const target = new BaseProxy(token);
  return new Proxy(target, {
    get(obj, prop) {
      if (prop in obj) {
        const value = Reflect.get(obj, prop, obj);
        return typeof value === "function" ? value.bind(obj) : value;
      }
      if (prop === Symbol.asyncIterator) {
        return () => ({
          next: async () => {
            const step = (await obj._callMethod("next")) as IteratorResult<unknown>;
            return step && typeof step === "object" && "done" in step ? step : { done: false, value: step };
          },
        });
      }
      // not a thenable: an AutoProxy can be returned from an async function
      if (typeof prop === "symbol" || prop === "then" || prop === "toJSON") return undefined;
      return (...args: unknown[]) => obj._callMethod(prop, args);
    },
  });
}
