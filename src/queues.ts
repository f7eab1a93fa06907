/**
 * `Queue`, `SimpleQueue` and `JoinableQueue`, shared by every process they are passed to.
 *
 *   put(x) ─► encode + v8.serialize (here: a bad value is refused at once) ─► QueueCore (owner)
 *   get()  ◄─ deserialize + decode ◄────────────────────────────────────────── QueueCore (owner)
 *
 * The process that creates a queue owns its items (a `QueueCore`); other processes reach it through
 * the object broker. Items are stored serialized, so a `put` copies the value as it is at that
 * moment, as Python's pickling does. A `put` resolves once the item is in the queue: a process may
 * exit right after it without losing the item or blocking anyone's `join()`.
 */
import { deserialize, serialize } from "node:v8";
import { inspect } from "node:util";
import { ClosedError, Empty, Full, ProcessError } from "./errors.js";
import { type Address, type Served, callRemote, isLocal, serve } from "./internal/broker.js";
import { type Reducible, type Reduced, decode, encode, reduce, registerRebuilder } from "./internal/codec.js";
import { type WaitOptions, checkSignal, checkWaitOptions } from "./internal/validate.js";
import { WaitList, deadlineFor } from "./internal/waitlist.js";

/** Options of a blocking queue operation: on timeout, `Full` / `Empty`; on abort, the signal's reason. */
export type QueueWaitOptions = WaitOptions;

/** The queue's state, in its owner process. Items are serialized bytes. */
class QueueCore implements Served {
  readonly #items: Uint8Array[] = [];
  #head = 0;
  #closed = false;
  #unfinished = 0;
  readonly #getters = new WaitList();
  readonly #putters = new WaitList();
  readonly #joiners = new WaitList();
  readonly #pollers = new WaitList();

  constructor(readonly maxsize: number) {}

  get size(): number {
    return this.#items.length - this.#head;
  }

  get closed(): boolean {
    return this.#closed;
  }

  tryPut(item: Uint8Array): boolean {
    if (this.#closed) throw new ClosedError("cannot put on a closed queue");
    if (this.maxsize > 0 && this.size >= this.maxsize) return false;
    this.#items.push(item);
    this.#unfinished++;
    this.#getters.wakeOne();
    this.#pollers.wakeAll();
    return true;
  }

  tryGet(): Uint8Array | undefined {
    if (this.size === 0) {
      if (this.#closed) throw new ClosedError("the queue is closed and empty");
      return undefined;
    }
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as never;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    this.#putters.wakeOne();
    return item;
  }

  async put(item: Uint8Array, block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<void> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      if (this.tryPut(item)) return;
      if (!block || !(await this.#putters.wait(deadline, signal))) {
        if (this.tryPut(item)) return;
        throw new Full(`the queue is full (maxsize ${this.maxsize})`);
      }
    }
  }

  async get(block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<Uint8Array> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      const item = this.tryGet();
      if (item) return item;
      if (!block || !(await this.#getters.wait(deadline, signal))) {
        const late = this.tryGet();
        if (late) return late;
        throw new Empty(block ? `the queue stayed empty for ${timeout} ms` : "the queue is empty");
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#getters.wakeAll();
    this.#putters.wakeAll();
    this.#pollers.wakeAll();
  }

  /** Waits until an item is there or the queue is closed (true), or the deadline passes (false). */
  async poll(timeout: number | undefined, signal?: AbortSignal): Promise<boolean> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      if (this.size > 0 || this.#closed) return true;
      if (!(await this.#pollers.wait(deadline, signal))) return this.size > 0 || this.#closed;
    }
  }

  taskDone(): void {
    if (this.#unfinished <= 0) throw new ProcessError("taskDone() called more times than there were items");
    if (--this.#unfinished === 0) this.#joiners.wakeAll();
  }

  async join(signal?: AbortSignal): Promise<void> {
    while (this.#unfinished > 0) await this.#joiners.wait(undefined, signal);
  }

  /** Remote calls: every reply carries the size, so proxies can answer `qsize()` without a round trip. */
  call(op: string, args: unknown[], signal: AbortSignal): unknown {
    const withSize = <V>(value: V) => [value, this.size] as const;
    switch (op) {
      case "put":
        return this.put(args[0] as Uint8Array, args[1] as boolean, args[2] as number | undefined, signal).then(
          withSize,
        );
      case "get":
        return this.get(args[0] as boolean, args[1] as number | undefined, signal).then(withSize);
      case "size":
        return withSize(null);
      case "close":
        this.close();
        return withSize(null);
      case "taskDone":
        this.taskDone();
        return withSize(null);
      case "join":
        return this.join(signal).then(withSize);
      case "poll":
        return this.poll(args[0] as number | undefined, signal).then(withSize);
      default:
        throw new ProcessError(`unknown queue operation ${op}`);
    }
  }
}

interface QueueState {
  target: Address;
  maxsize: number;
  kind: "Queue" | "SimpleQueue" | "JoinableQueue";
}

const owned = new Map<number, Queue<unknown>>();
/** Set while rebuilding a proxy, so the constructor does not create a local core. */
let attaching = false;

/**
 * A FIFO queue shared between processes, like Python's `multiprocessing.Queue`. Pass it to a
 * `Process` or a pool task as an argument; items from one producer arrive in the order it put them.
 * `for await (const item of queue)` reads until the queue is closed.
 */
export class Queue<T = unknown> implements Reducible, AsyncIterable<T> {
  #core: QueueCore | undefined;
  #target: Address | undefined;
  #maxsize: number;
  #knownSize = 0;
  #closedHere = false;

  /** `maxsize` <= 0 (the default) means unbounded. */
  constructor(maxsize = 0) {
    if (typeof maxsize !== "number" || Number.isNaN(maxsize)) {
      throw new TypeError(`maxsize must be a number (got ${typeof maxsize})`);
    }
    this.#maxsize = maxsize > 0 ? Math.floor(maxsize) : 0;
    if (!attaching) this.#core = new QueueCore(this.#maxsize);
  }

  /** @internal Rebuilds a queue received from another process. */
  static _attach<T>(state: QueueState, cls: typeof Queue<T>): Queue<T> {
    if (isLocal(state.target)) {
      const local = owned.get(state.target.id);
      if (local) return local as Queue<T>;
    }
    attaching = true;
    let queue: Queue<T>;
    try {
      queue = new cls();
    } finally {
      attaching = false;
    }
    queue.#target = state.target;
    queue.#maxsize = state.maxsize;
    return queue;
  }

  /**
   * Puts `item` at the tail. Waits for room when the queue is bounded and full (unless
   * `block: false`); rejects with `Full` after `timeout` ms, with SerializationError when the item
   * cannot be sent (the queue is unchanged), and with ClosedError after `close()`.
   */
  async put(item: T, options: QueueWaitOptions = {}): Promise<void> {
    const { block = true, timeout, signal } = checkWaitOptions(options);
    if (this.#closedHere) throw new ClosedError("cannot put on a closed queue");
    const bytes = pack(item);
    if (this.#core) return this.#core.put(bytes, block, block ? timeout : undefined, signal);
    const [, size] = (await callRemote(this.#target!, "put", [bytes, block, block ? timeout : undefined], signal)) as [
      unknown,
      number,
    ];
    this.#knownSize = size;
  }

  /** `put(item, { block: false })`: rejects with `Full` at once when there is no room. */
  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  /**
   * Removes and returns the head item. Waits for one (unless `block: false`); rejects with `Empty`
   * after `timeout` ms, and with ClosedError once the queue is closed and drained.
   */
  async get(options: QueueWaitOptions = {}): Promise<T> {
    const { block = true, timeout, signal } = checkWaitOptions(options);
    if (this.#core) return unpack(await this.#core.get(block, block ? timeout : undefined, signal)) as T;
    const [bytes, size] = (await callRemote(this.#target!, "get", [block, block ? timeout : undefined], signal)) as [
      Uint8Array,
      number,
    ];
    this.#knownSize = size;
    return unpack(bytes) as T;
  }

  /** `get({ block: false })`: rejects with `Empty` at once when there is no item. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /**
   * The number of items in the queue: exact in the process that created it; in other processes,
   * as of this process's last operation on the queue.
   */
  qsize(): number {
    return this.#core ? this.#core.size : this.#knownSize;
  }

  /** `qsize() === 0`. */
  empty(): boolean {
    return this.qsize() === 0;
  }

  /** True when the queue is bounded and holds `maxsize` items. */
  full(): boolean {
    return this.#maxsize > 0 && this.qsize() >= this.#maxsize;
  }

  /** The bound given at construction (0: unbounded). */
  get maxsize(): number {
    return this.#maxsize;
  }

  /**
   * Closes the queue for everyone: later puts reject with ClosedError; readers get the items still
   * in it, then ClosedError (a `for await` loop simply ends).
   */
  close(): void {
    this.#closedHere = true;
    if (this.#core) this.#core.close();
    else void callRemote(this.#target!, "close", []).catch(() => {});
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      try {
        yield await this.get();
      } catch (error) {
        if (error instanceof ClosedError) return;
        throw error;
      }
    }
  }

  /**
   * @internal Puts without waiting (the queue must be unbounded): encodes now, so a value that
   * cannot travel throws here, and sends in order. A failure to deliver is passed to `onError`.
   */
  _putNow(item: T, onError: (error: unknown) => void): void {
    const bytes = pack(item);
    if (this.#core) {
      this.#core.tryPut(bytes);
      return;
    }
    callRemote(this.#target!, "put", [bytes, true, undefined]).then(
      (reply) => (this.#knownSize = (reply as [unknown, number])[1]),
      onError,
    );
  }

  /** @internal Resolves true when an item is waiting or the queue is closed, false after `timeout`. */
  async _poll(timeout: number | undefined): Promise<boolean> {
    if (this.#core) return this.#core.poll(timeout);
    const [ready, size] = (await callRemote(this.#target!, "poll", [timeout])) as [boolean, number];
    this.#knownSize = size;
    return ready;
  }

  /** @internal */
  protected _call(op: "taskDone" | "join", signal?: AbortSignal): Promise<void> | void {
    if (this.#core) return op === "taskDone" ? this.#core.taskDone() : this.#core.join(signal);
    return callRemote(this.#target!, op, [], signal).then(() => {});
  }

  /** @internal */
  protected _kind(): QueueState["kind"] {
    return "Queue";
  }

  [reduce](): Reduced {
    if (!this.#target) {
      this.#target = serve(this.#core!);
      owned.set(this.#target.id, this as Queue<unknown>);
    }
    const state: QueueState = { target: this.#target, maxsize: this.#maxsize, kind: this._kind() };
    return { kind: "mpts.Queue", state };
  }

  [inspect.custom](): string {
    const where = this.#core ? "owner" : "proxy";
    return `${this.constructor.name} { size: ${this.qsize()}, maxsize: ${this.#maxsize}, ${where} }`;
  }
}

/** A queue without a bound or size queries, like Python's `SimpleQueue`. */
export class SimpleQueue<T = unknown> extends Queue<T> {
  constructor() {
    super(0);
  }

  protected override _kind(): QueueState["kind"] {
    return "SimpleQueue";
  }
}

/**
 * A queue whose consumers call `taskDone()` for every item they got; `join()` waits until every
 * item put so far has been marked done.
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /** Marks one item as processed; throws when called more often than items were put. */
  taskDone(): void {
    const result = this._call("taskDone");
    if (result instanceof Promise) result.catch(() => {});
  }

  /** Resolves when every item put has been marked with `taskDone()`. */
  async join(options: { signal?: AbortSignal } = {}): Promise<void> {
    checkSignal(options.signal, "options.signal");
    await this._call("join", options.signal);
  }

  protected override _kind(): QueueState["kind"] {
    return "JoinableQueue";
  }
}

registerRebuilder("mpts.Queue", (state) => {
  const s = state as QueueState;
  const cls = s.kind === "JoinableQueue" ? JoinableQueue : s.kind === "SimpleQueue" ? SimpleQueue : Queue;
  return Queue._attach(s, cls as typeof Queue<unknown>);
});

function pack(item: unknown): Uint8Array {
  const { value, changed } = encode(item, "bytes", "item");
  return serialize(changed ? { h: true, v: value } : { h: false, v: value });
}

function unpack(bytes: Uint8Array): unknown {
  const { h, v } = deserialize(bytes) as { h: boolean; v: unknown };
  return h ? decode(v) : v;
}
