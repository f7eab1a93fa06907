/**
 * `Queue`, `SimpleQueue` and `JoinableQueue`, shared by every process and thread they are passed to.
 *
 *   put(x) ─► packItem (here: a bad value is refused at once) ─► flavor ─► get() ─► unpackItem
 *
 *   flavor  RingQueue (internal/queue/ring-queue.ts): a ring in shared memory that every process maps;
 *                     a put or get is a lock, a copy and an unlock. The thread start method, and
 *                     the spawn start method with the native addon.
 *           BrokerQueue (internal/queue/broker-queue.ts): items in the creating process, reached through
 *                     the object broker. The spawn start method without the addon.
 *
 * Items are stored serialized, so a `put` copies the value as it is at that moment, as Python's
 * pickling does. A `put` resolves once the item is in the queue: a process may exit right after it
 * without losing the item or blocking anyone's `join()`.
 */
import { inspect } from "node:util";
import { ClosedError } from "./errors.js";
import { type Address, isLocal } from "./internal/wire/broker.js";
import { Arrival } from "./internal/arrival.js";
import { type Reduced, type Transport, reduce, registerRebuilder } from "./internal/wire/codec.js";
import { needsFallback } from "./internal/manager/fallback.js";
import { memoryOf, resolveMethod } from "./backends/registry.js";
import { BrokerQueue } from "./internal/queue/broker-queue.js";
import type { FlavorState, QueueFlavor } from "./internal/queue/flavor.js";
import { type RingState, RingQueue } from "./internal/queue/ring-queue.js";
import { checkOptionNames, checkSignal, checkWaitOptions, optionNames } from "./internal/validate.js";
import type { WaitOptions } from "./util.js";
import { type PrimitiveOptions, primitiveOptionNames } from "./synchronize.js";

/** Options of a blocking queue operation: on timeout, `Full` / `Empty`; on abort, the signal's reason. */
export type QueueWaitOptions = WaitOptions;

type Kind = "Queue" | "SimpleQueue" | "JoinableQueue";

interface QueueState {
  maxsize: number;
  kind: Kind;
  /** The ring's state, or the broker address of a BrokerQueue. */
  flavor: FlavorState & Partial<RingState>;
}

/** Queues created here that were sent elsewhere, by broker object id: one coming back is the same object. */
const owned = new Map<number, Queue<unknown>>();
const joinOptionNames = optionNames<NonNullable<Parameters<JoinableQueue["join"]>[0]>>({ signal: true });

/** What a queue arriving from another process is made of. */
const arrival = new Arrival<{ flavor: QueueFlavor; maxsize: number }>();

/**
 * A FIFO queue shared between processes, like Python's `multiprocessing.Queue`. Pass it to a
 * `Process` or a pool task as an argument; items from one producer arrive in the order it put them.
 * `for await (const item of queue)` reads until the queue is closed.
 */
export class Queue<T = unknown> implements AsyncIterable<T> {
  readonly #flavor: QueueFlavor;
  #maxsize: number;
  #closedHere = false;

  /**
   * `maxsize` <= 0 (the default) means unbounded. `options.context` picks the start method whose
   * memory the queue uses (default: the program's start method); a queue made for "thread" cannot
   * be sent to a "spawn" process.
   */
  constructor(maxsize = 0, options: PrimitiveOptions = {}) {
    if (typeof maxsize !== "number" || Number.isNaN(maxsize)) {
      throw new TypeError(`maxsize must be a number (got ${typeof maxsize})`);
    }
    const arrived = arrival.take();
    if (arrived) {
      this.#flavor = arrived.flavor;
      this.#maxsize = arrived.maxsize;
      return;
    }
    this.#maxsize = maxsize > 0 ? Math.floor(maxsize) : 0;
    checkOptionNames(options ?? {}, primitiveOptionNames, `new ${this._kind()}()`);
    const method = resolveMethod(options, "primitives", this._kind());
    const memory = memoryOf(method);
    this.#flavor = needsFallback(memory)
      ? new BrokerQueue(this.#maxsize)
      : RingQueue.create(memory, this.#maxsize, this._kind() === "JoinableQueue");
  }

  /**
   * Puts `item` at the tail. Waits for room when the queue is bounded and full (unless
   * `block: false`); rejects with `Full` after `timeout` ms, with SerializationError when the item
   * cannot be sent (the queue is unchanged), and with ClosedError after `close()`.
   */
  put(item: T, options?: QueueWaitOptions): Promise<void> {
    // not an async function: one promise less per call on the fast path
    try {
      const { block, timeout, signal } = options === undefined ? defaults : checkWaitOptions(options, "queue.put()");
      if (this.#closedHere) throw new ClosedError("cannot put on a closed queue");
      return this.#flavor.put(item, block, block ? timeout : undefined, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `put(item, { block: false })`: rejects with `Full` at once when there is no room. */
  putNowait(item: T): Promise<void> {
    return this.put(item, { block: false });
  }

  /**
   * Removes and returns the head item. Waits for one (unless `block: false`); rejects with `Empty`
   * after `timeout` ms, and with ClosedError once the queue is closed and drained.
   */
  get(options?: QueueWaitOptions): Promise<T> {
    try {
      const { block, timeout, signal } = options === undefined ? defaults : checkWaitOptions(options, "queue.get()");
      return this.#flavor.get(block, block ? timeout : undefined, signal) as Promise<T>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `get({ block: false })`: rejects with `Empty` at once when there is no item. */
  getNowait(): Promise<T> {
    return this.get({ block: false });
  }

  /**
   * The number of items in the queue. Exact in every process for a queue in shared memory; for a
   * queue held by a broker (spawn without the native addon), exact in the process that created it
   * and, elsewhere, as of this process's last operation on the queue.
   */
  qsize(): number {
    return this.#flavor.size();
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
    this.#flavor.close();
  }

  /** `for await (const item of queue)`: `get()`s item after item, waiting for each; ends once the queue is closed and empty. */
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
   * @internal Puts without waiting, ignoring any bound: encodes now, so a value that cannot travel
   * throws here, and puts in order. A failure to deliver is passed to `onError`.
   */
  _putNow(item: T, onError: (error: unknown) => void): void {
    this.#flavor.putNow(item, onError);
  }

  /** @internal Resolves true when an item is waiting or the queue is closed, false after `timeout`. */
  _poll(timeout: number | undefined): Promise<boolean> {
    return this.#flavor.poll(timeout);
  }

  /** @internal */
  protected _taskDone(): void {
    this.#flavor.taskDone();
  }

  /** @internal */
  protected _join(signal: AbortSignal | undefined): Promise<void> {
    return this.#flavor.join(signal);
  }

  /** @internal */
  protected _kind(): Kind {
    return "Queue";
  }

  /** @internal Sends the queue to another process, where it is the same queue (its items, bound and state). */
  [reduce](transport: Transport): Reduced {
    const flavor = this.#flavor.reduce(transport);
    if (isLocal(flavor.owner)) owned.set(flavor.owner.id, this as Queue<unknown>);
    const state: QueueState = { maxsize: this.#maxsize, kind: this._kind(), flavor };
    return { kind: "mpts.Queue", state };
  }

  /** Shows the size, the bound and where the items are held. */
  [inspect.custom](): string {
    return `${this.constructor.name} { size: ${this.qsize()}, maxsize: ${this.#maxsize}, ${this.#flavor.where} }`;
  }
}

const defaults = { block: true, timeout: undefined, signal: undefined } as const;

/** A queue without a bound, like Python's `SimpleQueue`. */
export class SimpleQueue<T = unknown> extends Queue<T> {
  constructor(options: PrimitiveOptions = {}) {
    super(0, options);
  }

  protected override _kind(): Kind {
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
    this._taskDone();
  }

  /** Resolves when every item put has been marked with `taskDone()`. */
  async join(options: { signal?: AbortSignal } = {}): Promise<void> {
    checkOptionNames(options, joinOptionNames, "queue.join()");
    checkSignal(options.signal, "options.signal");
    await this._join(options.signal);
  }

  protected override _kind(): Kind {
    return "JoinableQueue";
  }
}

registerRebuilder("mpts.Queue", (state) => {
  const { flavor, maxsize, kind } = state as QueueState;
  // a queue of this process that comes back is the same object
  if (isLocal(flavor.owner)) {
    const local = owned.get(flavor.owner.id);
    if (local) return local;
  }
  const made = flavor.ring
    ? RingQueue.attach(flavor as RingState, maxsize, kind === "JoinableQueue")
    : new BrokerQueue(maxsize, flavor.owner as Address);
  const cls = kind === "JoinableQueue" ? JoinableQueue : kind === "SimpleQueue" ? SimpleQueue : Queue;
  return arrival.with({ flavor: made, maxsize }, () => new cls());
});
