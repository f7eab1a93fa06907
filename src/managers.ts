/**
 * Managers: objects held by a server process, used by any process through proxies, like Python's
 * `multiprocessing.managers`.
 *
 *   Manager.start() ──► server process (or thread) listening on a private socket
 *   manager.dict()  ──► DictProxy ──(one message per method call)──► the server's Map
 *   proxy passed to a Process or a pool task ──► arrives as a proxy of the same object
 *
 * `BaseManager` serves types registered with `register()` and can listen on TCP for other
 * machines; connections authenticate with an HMAC challenge on the authkey. Every proxy method
 * returns a promise; when the server goes away, calls in flight reject with EOFError and later ones
 * with a ProcessError: nothing waits forever on a dead manager.
 */
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { Pipe } from "./connection.js";
import { AuthenticationError, ClosedError, EOFError, ProcessError } from "./errors.js";
import { PendingCalls } from "./internal/calls.js";
import { type Reduced, decodeOrImport, encode, reduce, registerRebuilder } from "./internal/codec.js";
import type { FramedSocket } from "./internal/framing.js";
import {
  ManagerServer,
  type Registration,
  type Reply,
  type Request,
  type ServerConfig,
  type Token,
  resultToken,
  runManagerServer,
  serverModule,
} from "./internal/manager-server.js";
import { resolveMethod } from "./internal/methods.js";
import { type StartMethod, runtime } from "./internal/runtime.js";
import {
  MessageReader,
  type SocketAddress,
  checkAddress,
  checkAuthkey,
  dialChannel,
  formatAddress,
  localAddress,
} from "./internal/sockets.js";
import {
  type WaitOptions,
  checkOptionNames,
  checkTimeout,
  checkWaitOptions,
  optionNames,
} from "./internal/validate.js";
import { Process } from "./process.js";
import { codeRef, libraryCodeRef } from "./reduction.js";
import type { Scalar, Typecode } from "./sharedctypes.js";

export type { SocketAddress } from "./internal/sockets.js";

// ---------------------------------------------------------------------------------------------
// The connection from this process to one manager server

const shutDown = new Set<string>();

function clientKey(address: SocketAddress, authkey: string | null): string {
  return `${JSON.stringify(address)}|${authkey ?? ""}`;
}

/** One connection per manager per process, shared by every proxy of that manager. */
class ManagerClient {
  static #all = new Map<string, ManagerClient>();
  static #inFlight = new Set<Promise<unknown>>();
  static #exitHook = false;

  /** The connection to the manager at `address` (made on first use). */
  static for(address: SocketAddress, authkey: string | null): ManagerClient {
    const key = clientKey(address, authkey);
    let client = ManagerClient.#all.get(key);
    if (!client) {
      client = new ManagerClient(key, address, authkey);
      ManagerClient.#all.set(key, client);
    }
    return client;
  }

  /** Waits, before a child exits, for calls it did not await (a `set()` or `append()`). */
  static track(call: Promise<unknown>): void {
    ManagerClient.#inFlight.add(call);
    const forget = () => ManagerClient.#inFlight.delete(call);
    call.then(forget, forget);
    if (!ManagerClient.#exitHook) {
      ManagerClient.#exitHook = true;
      runtime.beforeExit.push(async () => {
        while (ManagerClient.#inFlight.size) await Promise.allSettled([...ManagerClient.#inFlight]);
      });
    }
  }

  readonly ready: Promise<void>;
  /** The number the server gave this connection; objects this process creates are named after it. */
  clientId = 0;
  #key: string;
  #address: SocketAddress;
  #channel: FramedSocket | undefined;
  #calls = new PendingCalls({
    cancel: (q) => this.#channel?.send({ c: q }),
    busy: (busy) => (busy ? this.#channel?.ref() : this.#channel?.unref()),
  });
  #nextObject = 0;
  #lost: Error | undefined;
  /** How many managers of this process (started or connected) use this connection. */
  #managers = 0;

  private constructor(key: string, address: SocketAddress, authkey: string | null) {
    this.#key = key;
    this.#address = address;
    this.ready = this.#open(authkey === null ? undefined : Buffer.from(authkey, "hex"));
    this.ready.catch((error) => this.#close(error));
  }

  async #open(authkey: Buffer | undefined): Promise<void> {
    const channel = await dialChannel(this.#address, authkey);
    const reader = new MessageReader(channel);
    const hello = (await reader.next()) as { t?: string; client?: number };
    if (hello?.t === "challenge") {
      channel.destroy();
      throw new AuthenticationError("the manager requires an authkey: pass the same authkey as the server's");
    }
    if (hello?.t !== "hello") throw new ProcessError(`${formatAddress(this.#address)} is not a manager server`);
    reader.release();
    this.clientId = hello.client!;
    channel.listen(
      (message) => this.#reply(message as Reply),
      (error) =>
        this.#close(
          new EOFError(
            `the connection to the manager at ${formatAddress(this.#address)} was lost: the manager was shut down or its process died`,
            { cause: error },
          ),
        ),
    );
    if (this.#calls.size === 0) channel.unref();
    this.#channel = channel;
  }

  /** A fresh id for an object this process creates (the connection must be ready). */
  newId(): string {
    return `${this.clientId}.${++this.#nextObject}`;
  }

  /** Sends one request; resolves with the decoded reply. */
  request(body: Omit<Request & { q: number }, "q">, signal?: AbortSignal): Promise<unknown> {
    if (this.#lost) return Promise.reject(this.#lost);
    return this.#calls.start((q) => {
      const message = { q, ...body };
      if (this.#channel) {
        this.#channel.send(message);
        return;
      }
      this.ready.then(
        () => {
          if (!this.#calls.has(q)) return;
          this.#channel!.ref();
          this.#channel!.send(message);
        },
        () => {},
      );
    }, signal);
  }

  /** A manager of this process uses the connection (until it calls `disconnect()`). */
  join(): void {
    this.#managers++;
  }

  /**
   * A manager of this process is done with the connection: the last one ends it (the server keeps
   * running). Another manager of this process connected to the same server, a started one that
   * must still send its shutdown for instance, keeps it open.
   */
  disconnect(): void {
    if (--this.#managers > 0) return;
    this.#close(new ClosedError("this process closed its connection to the manager"));
    this.#channel?.destroy();
  }

  #reply(reply: Reply): void {
    if (!reply.ok) {
      this.#calls.settle(reply.q, false, decodeOrImport(reply.e));
      return;
    }
    try {
      // a Promise (while a module is imported) is adopted by the caller's promise
      this.#calls.settle(reply.q, true, reply.h ? decodeOrImport(reply.v) : reply.v);
    } catch (error) {
      this.#calls.settle(reply.q, false, error);
    }
  }

  #close(error: Error): void {
    if (this.#lost) return;
    const gone = shutDown.has(this.#key);
    this.#lost = gone ? new ClosedError("the manager that owns this object was shut down", { cause: error }) : error;
    if (ManagerClient.#all.get(this.#key) === this) ManagerClient.#all.delete(this.#key);
    this.#calls.rejectAll(this.#lost);
  }
}

// ---------------------------------------------------------------------------------------------
// Proxies

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
    if (shutDown.has(clientKey(this._token.address, this._token.authkey))) {
      return Promise.reject(new ClosedError(`the manager that owns this ${this._token.typeid} was shut down`));
    }
    let encoded: ReturnType<typeof encode>;
    try {
      encoded = encode(args, "bytes", `${this._token.typeid}.${method}() arguments`);
    } catch (error) {
      return Promise.reject(error);
    }
    const client = ManagerClient.for(this._token.address, this._token.authkey);
    const call = client
      .request({ k: "call", id: this._token.id, m: method, a: encoded.value, h: encoded.changed }, options.signal)
      .then((value) => this.#adopt(value));
    if (!options.blocking) ManagerClient.track(call);
    return call;
  }

  /** A method that returned an object kept on the server comes back as a proxy of it. */
  #adopt(value: unknown): unknown {
    if (value && typeof value === "object" && (value as Record<string, unknown>)[resultToken]) {
      const token = { ...(value as Token), authkey: this._token.authkey };
      delete (token as Record<string, unknown>)[resultToken];
      return makeProxy(token);
    }
    return value;
  }

  /** Sends the proxy's token (manager address, object id, authkey); the receiver connects to the same object. */
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

function makeProxy(token: Token): BaseProxy {
  const Cls = proxyClasses.get(token.proxy);
  return Cls ? new Cls(token) : autoProxy(token);
}

registerRebuilder("mpts.ManagerProxy", (state) => makeProxy(state as Token));

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

// ---------------------------------------------------------------------------------------------
// Managers

/** Options of `register()`. */
export interface RegisterOptions {
  /** The methods clients may call; default: every public method (names not starting with "_"). */
  exposed?: readonly string[];
  /** Methods whose result stays on the server and comes back as a proxy of the given typeid. */
  methodToTypeid?: Record<string, string>;
}

const registerOptionNames = optionNames<RegisterOptions>({ exposed: true, methodToTypeid: true });

/** Options of `new BaseManager(...)` and `Manager.start(...)`. */
export interface ManagerOptions {
  /**
   * Where the server listens: a Unix socket path, or `[host, port]` for TCP (port 0 picks a free
   * port). Default: a private Unix socket.
   */
  address?:
    | SocketAddress
    | {
        /** The interface to listen on (default `127.0.0.1`). */
        host?: string;
        /** The TCP port; 0 picks a free one. */
        port: number;
      };
  /** The shared secret clients must prove they hold. Default: 32 random bytes (see `authkey`). */
  authkey?: string | Uint8Array;
  /** Where the server runs: a child process (`"spawn"`, default) or a worker thread (`"thread"`). */
  context?:
    | StartMethod
    | {
        /** The start method, as a {@link Context} carries it. */
        readonly startMethod: StartMethod;
      };
}

const managerOptionNames = optionNames<ManagerOptions>({ address: true, authkey: true, context: true });

interface Entry {
  typeid: string;
  callable?: Function;
  builtin?: string;
  exposed?: readonly string[];
  methodToTypeid?: Record<string, string>;
  proxy: string;
}

const registries = new WeakMap<Function, Map<string, Entry>>();

function registryOf(cls: Function): Map<string, Entry> {
  const chain: Function[] = [];
  for (let c: Function | null = cls; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) chain.unshift(c);
  const merged = new Map<string, Entry>();
  for (const c of chain) for (const [k, v] of registries.get(c) ?? []) merged.set(k, v);
  return merged;
}

function checkRegistration(typeid: unknown, callable: unknown, options: RegisterOptions): void {
  if (typeof typeid !== "string" || typeid.length === 0) {
    throw new TypeError(`typeid must be a non-empty string (got ${JSON.stringify(typeid)})`);
  }
  if (callable !== undefined && typeof callable !== "function") {
    throw new TypeError(`the callable for typeid "${typeid}" must be a function or class (got ${typeof callable})`);
  }
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  checkOptionNames(options, registerOptionNames, "register()");
  if (
    options.exposed !== undefined &&
    (!Array.isArray(options.exposed) || options.exposed.some((m) => typeof m !== "string"))
  ) {
    throw new TypeError(`options.exposed must be an array of method names (got ${JSON.stringify(options.exposed)})`);
  }
}

type State = "initial" | "starting" | "started" | "connected" | "shutdown";

/** A server's handle when it runs in this very process (`getServer()`). */
export interface ManagerServerHandle {
  /** Where it listens. */
  readonly address: SocketAddress;
  /** Resolves when a client shuts the server down (or `close()` is called). */
  serveForever(): Promise<void>;
  /** Stops the server; connected proxies' calls fail. */
  close(): void;
}

/**
 * A manager of registered types, like Python's `BaseManager`. Register types on a subclass, then
 * `start()` a server or `connect()` to one:
 *
 * ```ts
 * class MathsManager extends BaseManager {}
 * MathsManager.register("Maths", MathsClass);
 * await using manager = await new MathsManager({ address: ["127.0.0.1", 0], authkey: "secret" }).start();
 * const maths = await manager.create<MathsClass>("Maths");
 * await maths.add(1, 2);
 * ```
 */
export class BaseManager {
  /**
   * Registers `typeid` for every manager of this class (and its subclasses): `create(typeid, ...args)`
   * calls `callable` in the server (with `new` for a class) and returns a proxy of the result. A
   * client that only connects may register a typeid without a callable.
   */
  static register(typeid: string, callable?: Function, options: RegisterOptions = {}): void {
    checkRegistration(typeid, callable, options);
    // `this` is the class register() was called on: a subclass gets its own registry
    // biome-ignore lint/complexity/noThisInStatic: per-subclass registries
    let own = registries.get(this);
    // biome-ignore lint/complexity/noThisInStatic: per-subclass registries
    if (!own) registries.set(this, (own = new Map()));
    own.set(typeid, {
      typeid,
      callable,
      exposed: options.exposed,
      methodToTypeid: options.methodToTypeid,
      proxy: "auto",
    });
  }

  #registry: Map<string, Entry>;
  #address: SocketAddress | undefined;
  #authkey: Buffer;
  #method: StartMethod;
  #state: State = "initial";
  #process: Process | undefined;
  #client: ManagerClient | undefined;

  constructor(options: ManagerOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`manager options must be an object such as { address, authkey } (got ${typeof options})`);
    }
    checkOptionNames(options, managerOptionNames, `new ${new.target.name}()`);
    this.#address = options.address === undefined ? undefined : checkAddress(options.address, "options.address");
    this.#authkey = checkAuthkey(options.authkey, "options.authkey") ?? randomBytes(32);
    this.#method = resolveMethod(options, "process", new.target.name);
    this.#registry = registryOf(new.target);
  }

  /** Registers `typeid` for this manager only (before `start()` or `connect()`). */
  register(typeid: string, callable?: Function, options: RegisterOptions = {}): void {
    checkRegistration(typeid, callable, options);
    if (this.#state !== "initial") throw new ProcessError("register() types before start() or connect()");
    this.#registry.set(typeid, {
      typeid,
      callable,
      exposed: options.exposed,
      methodToTypeid: options.methodToTypeid,
      proxy: "auto",
    });
  }

  /** Where the server listens (for TCP with port 0: the port it got). */
  get address(): SocketAddress {
    if (!this.#address) throw new ProcessError("the manager has no address until start()");
    return this.#address;
  }

  /** The authkey clients must hold (random unless given). */
  get authkey(): Buffer {
    return this.#authkey;
  }

  /** The server's process id once started (a thread-mode server shares this process's pid). */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Whether this manager was started or connected and not yet shut down. */
  get running(): boolean {
    return this.#state === "started" || this.#state === "connected";
  }

  #config(local: boolean): ServerConfig {
    const registry: (Registration & { local?: Function })[] = [...this.#registry.values()].map((e) => ({
      typeid: e.typeid,
      builtin: e.builtin,
      callable:
        e.callable && !local ? codeRef(e.callable, `the callable registered for typeid "${e.typeid}"`) : undefined,
      local: local ? e.callable : undefined,
      exposed: e.exposed ? [...e.exposed] : undefined,
      methodToTypeid: e.methodToTypeid,
      proxy: e.proxy,
    }));
    return { address: this.#address ?? localAddress("mpts-manager"), authkey: this.#authkey, registry };
  }

  /**
   * Starts the server in a child process (or worker thread, per `context`) and connects to it.
   * Rejects if the server cannot start (address in use, a registered callable that cannot be found).
   */
  async start(): Promise<this> {
    if (this.#state !== "initial") throw new ProcessError(`cannot start a manager that is ${this.#state}`);
    this.#state = "starting";
    // the server is a daemon and a pipe read holds no handle: keep the program alive until it is up
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      const config = this.#config(false);
      const [reader, writer] = Pipe(false);
      libraryCodeRef(runManagerServer, serverModule);
      const server = new Process({
        target: runManagerServer,
        args: [config, writer],
        daemon: true,
        context: this.#method,
        name: `${this.constructor.name}-server`,
      });
      server.start();
      this.#process = server;
      const ended = server._ended!.then(() => {
        throw new ProcessError(
          `the manager's server process exited (exit code ${server.exitcode}) before it was ready`,
        );
      });
      const reply = (await Promise.race([reader.recv(), ended])) as
        | { ok: true; address: SocketAddress }
        | { ok: false; error: unknown };
      reader.close();
      if (!reply.ok) throw reply.error;
      this.#address = reply.address;
      await this.#connect();
      this.#state = "started";
      void server._ended!.then(() => {
        if (this.#state === "started") this.#state = "shutdown";
      });
      return this;
    } catch (error) {
      this.#state = "initial";
      this.#process?.kill();
      throw error;
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Connects to a server started elsewhere (at `address`, with the same `authkey`). */
  async connect(): Promise<this> {
    if (this.#state !== "initial") throw new ProcessError(`cannot connect a manager that is ${this.#state}`);
    if (!this.#address)
      throw new TypeError("connect() needs the server's address: new BaseManager({ address, authkey })");
    await this.#connect();
    this.#state = "connected";
    return this;
  }

  async #connect(): Promise<void> {
    shutDown.delete(clientKey(this.#address!, this.#authkey.toString("hex")));
    this.#client = ManagerClient.for(this.#address!, this.#authkey.toString("hex"));
    this.#client.join();
    await this.#client.ready;
  }

  /**
   * Runs the server in this process instead of a child (Python's `get_server()`): for a machine
   * that only serves. `serveForever()` resolves when a client shuts it down.
   */
  async getServer(): Promise<ManagerServerHandle> {
    if (this.#state !== "initial") throw new ProcessError(`cannot serve from a manager that is ${this.#state}`);
    const server = await ManagerServer.start(this.#config(true));
    this.#address = server.address;
    return { address: server.address, serveForever: () => server.done, close: () => server.close() };
  }

  /**
   * Creates an object of a registered `typeid` in the server, calling its callable with `args`, and
   * resolves with its proxy. An error the callable throws rejects here, with its class.
   */
  async create<T = any>(typeid: string, ...args: unknown[]): Promise<AutoProxy<T>> {
    const { proxy, made } = this.#create(typeid, args);
    await made;
    return proxy as AutoProxy<T>;
  }

  /** @internal Creates an object and returns its proxy at once; a failure shows on the proxy's calls. */
  protected _createNow<P extends BaseProxy>(typeid: string, args: unknown[]): P {
    const { proxy, made } = this.#create(typeid, args);
    made.catch(() => {});
    return proxy as P;
  }

  #create(typeid: string, args: unknown[]): { proxy: BaseProxy; made: Promise<unknown> } {
    if (this.#state === "shutdown") throw new ClosedError("the manager was shut down");
    if (this.#state !== "started" && this.#state !== "connected") {
      throw new ProcessError("start() or connect() the manager before creating objects");
    }
    const entry = this.#registry.get(typeid);
    if (!entry) {
      throw new TypeError(
        `unknown typeid ${JSON.stringify(typeid)}: register it first, e.g. ${this.constructor.name}.register(${JSON.stringify(typeid)}, callable)`,
      );
    }
    const encoded = encode(args, "bytes", `${typeid}() arguments`);
    const client = this.#client!;
    const id = client.newId();
    const authkey = this.#authkey.toString("hex");
    const token: Token = { typeid, id, address: this.#address!, authkey, proxy: entry.proxy };
    const made = client.request({ k: "create", id, typeid, a: encoded.value, h: encoded.changed });
    ManagerClient.track(made);
    return { proxy: makeProxy(token), made };
  }

  /**
   * Shuts the server down (a started manager) and waits for its process to end; a connected
   * manager only disconnects. Proxies of its objects then reject with ClosedError.
   */
  async shutdown(): Promise<void> {
    const state = this.#state;
    if (state === "shutdown" || state === "initial") return;
    this.#state = "shutdown";
    const key = clientKey(this.#address!, this.#authkey.toString("hex"));
    if (state === "connected") {
      this.#client?.disconnect();
      return;
    }
    shutDown.add(key);
    try {
      await this.#client!.request({ k: "shutdown" });
    } catch {
      // already gone
    }
    const server = this.#process!;
    await server.join(2000);
    if (server.isAlive()) server.kill();
    await server.join();
  }

  /** Shuts down (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /** Shows the state and, once started, the server's address. */
  [inspect.custom](): string {
    const where = this.#address ? `, address: ${formatAddress(this.#address)}` : "";
    return `${this.constructor.name} { state: '${this.#state}'${where} }`;
  }
}

const barrierOptionNames = optionNames<NonNullable<Parameters<Manager["Barrier"]>[1]>>({ timeout: true });

/**
 * Python's `SyncManager`: a server holding dicts, lists, namespaces, queues, locks and values for
 * every process that has their proxies.
 *
 * ```ts
 * await using manager = await Manager.start();
 * const scores = manager.dict<string, number>();
 * await pool.map(score, names.map((n) => [scores, n]));
 * console.log(await scores.toObject());
 * ```
 */
export class Manager extends BaseManager {
  /** Starts a manager (server in a child process, or a thread with `context: "thread"`). */
  static start(options?: ManagerOptions): Promise<Manager> {
    return new Manager(options).start();
  }

  /** A new dict on the server, optionally filled from `init`. */
  dict<K = string, V = unknown>(init?: Map<K, V> | Iterable<readonly [K, V]> | Record<string, V>): DictProxy<K, V> {
    const pairs =
      init instanceof Map
        ? [...init]
        : init && Symbol.iterator in Object(init)
          ? [...(init as Iterable<[K, V]>)]
          : init;
    return this._createNow("dict", pairs === undefined ? [] : [pairs]);
  }
  /** A new list on the server, optionally filled from `init`. */
  list<T = unknown>(init?: Iterable<T>): ListProxy<T> {
    return this._createNow("list", init === undefined ? [] : [[...init]]);
  }
  /** A new namespace (named attributes) on the server. */
  Namespace(init?: Record<string, unknown>): NamespaceProxy {
    return this._createNow("Namespace", init === undefined ? [] : [init]);
  }
  /** A new FIFO queue on the server; `maxsize` 0 (default) means unbounded. */
  Queue<T = unknown>(maxsize = 0): QueueProxy<T> {
    return this._createNow("Queue", [maxsize]);
  }
  /** A new queue with `taskDone()` and `join()`. */
  JoinableQueue<T = unknown>(maxsize = 0): JoinableQueueProxy<T> {
    return this._createNow("JoinableQueue", [maxsize]);
  }
  /** A new lock. */
  Lock(): LockProxy {
    return this._createNow("Lock", []);
  }
  /** A new re-entrant lock. */
  RLock(): RLockProxy {
    return this._createNow("RLock", []);
  }
  /** A new semaphore. */
  Semaphore(value = 1): SemaphoreProxy {
    return this._createNow("Semaphore", [value]);
  }
  /** A new semaphore that may not be released above its initial value. */
  BoundedSemaphore(value = 1): SemaphoreProxy {
    return this._createNow("BoundedSemaphore", [value]);
  }
  /** A new event. */
  Event(): EventProxy {
    return this._createNow("Event", []);
  }
  /** A new condition, over its own RLock or the given Lock/RLock of this manager. */
  Condition(lock?: LockProxy): ConditionProxy {
    return this._createNow("Condition", lock === undefined ? [] : [lock]);
  }
  /** A new barrier for `parties` callers (an `action` cannot run in the server: call it after `wait()` resolves 0). */
  Barrier(parties: number, options: { timeout?: number } = {}): BarrierProxy {
    checkOptionNames(options, barrierOptionNames, "manager.Barrier()");
    return this._createNow("Barrier", [parties, options]);
  }
  /** A new typed value (64-bit typecodes hold bigints). */
  Value<T extends Typecode>(typecode: T, value: Scalar<T>): ValueProxy<Scalar<T>> {
    return this._createNow("Value", [typecode, value]);
  }
  /** A new fixed-length typed array of `sizeOrItems` zeros or items. */
  Array<T extends Typecode>(typecode: T, sizeOrItems: number | Iterable<Scalar<T>>): ArrayProxy<Scalar<T>> {
    return this._createNow("Array", [typecode, typeof sizeOrItems === "number" ? sizeOrItems : [...sizeOrItems]]);
  }
}

{
  const own = new Map<string, Entry>();
  const builtins = [
    "dict",
    "list",
    "Namespace",
    "Queue",
    "JoinableQueue",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
  ];
  builtins.push("Event", "Condition", "Barrier", "Value", "Array");
  for (const typeid of builtins) {
    own.set(typeid, { typeid, builtin: typeid, proxy: typeid === "BoundedSemaphore" ? "Semaphore" : typeid });
  }
  registries.set(Manager, own);
}

/** @internal The registrations of Manager's own types, for a server of them. */
export function builtinRegistry(): Registration[] {
  return [...registries.get(Manager)!.values()].map((e) => ({ typeid: e.typeid, builtin: e.builtin, proxy: e.proxy }));
}
