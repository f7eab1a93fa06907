/**
 * The shared-memory flavor of a queue: items travel through a ring (ring.ts) that every process
 * and thread holding the queue maps, so a put or a get is a lock, a copy and an unlock.
 *
 *   put(x) ─► packItem ─► lock ─┬─ fits, and nothing held ─► record in the ring ──────────────────┐
 *                               └─ too large, or no room ─► the creator's Spill (a broker call) ─┤
 *                                                                                              │
 *   Spill (spill.ts, in the creator): holds items, writes them to the ring in arrival order as │
 *     room appears: small ones as records, large ones as references (-id) to bytes it keeps ───┤
 *                                                                                              ▼
 *   get() ◄─ unpackItem ◄─ lock + take the head record ◄──────────────────────────── ring (FIFO)
 *              ▲ a reference: fetch its bytes from the Spill (a local call in the creator)
 *
 * Order: while the Spill holds items (`SPILLED` > 0), every put goes there too, so held items are
 * written first and cannot starve behind a steady stream. A process whose own item is still on its
 * way there sends its next puts the same road, so they never overtake it: the Spill numbers the items
 * it accepts and publishes the number of the last one written (`SPILL_WRITTEN`), and a process writes
 * to the ring again once that passes its own. A `close()` from a process with items on the way
 * travels behind them too. (The order between producers is free, as in Python.)
 *
 * A put never waits for room in the ring (an unbounded put never waits at all); in a bounded queue it
 * waits while `SIZE` >= maxsize, and a bounded put counts its item in `SIZE` before it travels. The
 * Spill alone changes `SPILLED` (items it holds) and counts the items it accepts for an unbounded queue,
 * so an item lost on its way (its sender killed mid-send) leaves no count wrong behind.
 *
 * The Spill writes when items arrive and when a reader asks (`FEED_ASKED`): a reader that finds the
 * ring empty, or half empty, while the Spill holds items. Only items that went to the Spill depend
 * on the creator staying alive; the ring itself outlives it in every process that mapped it.
 *
 * A queue in a thread's memory (a SharedArrayBuffer) packs its items for the `local` transport: shared
 * memory in an item (a Lock, a Value, another queue) is deposited for whichever thread takes it, and a
 * put that fails gives it back.
 *
 * Wake-ups: a put wakes one sleeping reader when the ring goes from empty to not empty; a reader that
 * leaves records behind (or gives up after being woken) wakes the next. Bounded queues do the same for
 * sleeping writers. So a steady stream makes one wake system call per sleep, not one per item.
 */
import { ClosedError, Empty, Full, ProcessError } from "../../errors.js";
import { type Address, callRemote, serve } from "../wire/broker.js";
import { checkTransport, type BlockRef } from "../shm/shared-memory.js";
import type { Transport } from "../wire/codec.js";
import { Spill } from "./spill.js";
import {
  type ItemTransport,
  inbox,
  mayHoldShared,
  ownedBytes,
  packItem,
  releaseItem,
  unpackInbox,
  unpackItem,
} from "./item-codec.js";
import { type FlavorState, type QueueFlavor, emptyMessage, fullMessage } from "./flavor.js";
import { deadlineFor } from "../waitlist.js";
import {
  ALL_DONE,
  CLOSED,
  FEED_ASKED,
  GETTERS,
  JOINERS,
  NOT_EMPTY,
  NOT_FULL,
  SPILLED,
  SPILL_WRITTEN,
  PUTTERS,
  RECORDS,
  Ring,
  SIZE,
  UNFINISHED,
  recordBytes,
} from "../shm/ring.js";
import type { SharedMemoryKind } from "../runtime.js";

/** What another process needs to use the queue. */
export interface RingState extends FlavorState {
  ring: BlockRef;
}

/** A sleep while items are held back is cut short this often, to ask the creator again. */
const FEED_RETRY_MS = 200;

/** Spilled puts of one tick, sent as one message. */
interface Outbox {
  items: Uint8Array[];
  reserved: boolean;
  /** Settles with the creator's reply: how many it took, and the number of the last. */
  sent: Promise<[number, number]>;
  /** The reply, once sent. */
  reply?: Promise<[number, number]>;
}

const DONE = Promise.resolve();
const EMPTY: unique symbol = Symbol("empty");
const FULL: unique symbol = Symbol("full");

/** A queue whose items travel through a ring in shared memory. */
export class RingQueue implements QueueFlavor {
  readonly #ring: Ring;
  readonly #w: Int32Array;
  readonly #maxsize: number;
  readonly #joinable: boolean;
  /** `local` for a ring in a thread's memory: its items never leave this process. */
  readonly #transport: ItemTransport;
  /** The creator's store: set in the creator only. */
  readonly #spill: Spill | undefined;
  /** The creator's broker address: set elsewhere, and in the creator once the queue was sent. */
  #owner: Address | undefined;
  /** This process's puts on their way to the creator's store. */
  #spillsInFlight = 0;
  /** The number of this process's last item in the creator's store, until it is seen written. */
  #lastSpill: number | undefined;
  /** Puts of this tick on their way to the creator's store, not sent yet. */
  #outbox: Outbox | undefined;

  /** A new queue, created here. */
  static create(memory: SharedMemoryKind, maxsize: number, joinable: boolean): RingQueue {
    const ring = Ring.allocate(memory);
    return new RingQueue(ring, maxsize, joinable, new Spill(ring, joinable));
  }

  /** The queue `state` describes, in a process other than its creator. */
  static attach(state: RingState, maxsize: number, joinable: boolean): RingQueue {
    return new RingQueue(Ring.attach(state.ring), maxsize, joinable, undefined, state.owner);
  }

  private constructor(ring: Ring, maxsize: number, joinable: boolean, spill: Spill | undefined, owner?: Address) {
    this.#ring = ring;
    this.#w = ring.words;
    this.#maxsize = maxsize;
    this.#joinable = joinable;
    this.#transport = ring.block.ref.k === "sab" ? "local" : "bytes";
    this.#spill = spill;
    this.#owner = owner;
  }

  put(item: unknown, block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<void> {
    let bytes: Uint8Array | undefined;
    let done: typeof FULL | undefined | Promise<void>;
    try {
      bytes = packItem(item, this.#transport);
      done = this.#tryPut(bytes, false);
    } catch (error) {
      if (bytes) this.#undelivered(bytes);
      return Promise.reject(error);
    }
    if (done === undefined) return DONE;
    if (done !== FULL) return this.#releaseIfFails(done, bytes);
    if (!block) {
      this.#undelivered(bytes);
      return Promise.reject(new Full(fullMessage(this.#maxsize)));
    }
    const owned = ownedBytes(bytes);
    return this.#releaseIfFails(this.#putWhenRoom(owned, timeout, signal), owned);
  }

  /** Gives back what an item that will not be delivered deposited (the `local` transport). */
  #undelivered(bytes: Uint8Array): void {
    if (this.#transport === "local") releaseItem(bytes);
  }

  /** `put`, giving back the item's deposit if it fails. */
  #releaseIfFails(put: Promise<void>, bytes: Uint8Array): Promise<void> {
    if (this.#transport !== "local" || !mayHoldShared(bytes)) return put;
    return put.catch((error: unknown) => {
      releaseItem(bytes);
      throw error;
    });
  }

  async #putWhenRoom(bytes: Uint8Array, timeout: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      const seq = Atomics.load(this.#w, NOT_FULL);
      const result = this.#tryPut(bytes, false);
      if (result !== FULL) return result;
      const left = deadline - performance.now();
      if (left <= 0 || signal?.aborted) {
        this.#ring.passOn(NOT_FULL, PUTTERS);
        if (signal?.aborted) throw signal.reason;
        throw new Full(fullMessage(this.#maxsize));
      }
      await this.#ring.sleep(NOT_FULL, PUTTERS, seq, left, signal);
    }
  }

  putNow(item: unknown, onError: (error: unknown) => void): void {
    const bytes = packItem(item, this.#transport);
    let result: typeof FULL | undefined | Promise<void>;
    try {
      result = this.#tryPut(bytes, true);
    } catch (error) {
      this.#undelivered(bytes);
      throw error;
    }
    if (result instanceof Promise) this.#releaseIfFails(result, bytes).catch(onError);
  }

  /** Locked: whether a put from here must go to the creator's store, to stay behind its own there. */
  #behindSpill(): boolean {
    if (this.#spillsInFlight > 0) return true;
    if (this.#lastSpill === undefined) return false;
    if (((Atomics.load(this.#w, SPILL_WRITTEN) - this.#lastSpill) | 0) < 0) return true;
    this.#lastSpill = undefined;
    return false;
  }

  /**
   * Puts `bytes` if the bound allows (FULL if not): into the ring, or, when they do not fit or
   * an earlier put from here is still held, to the creator (a promise when that is another process).
   */
  #tryPut(bytes: Uint8Array, ignoreBound: boolean): typeof FULL | undefined | Promise<void> {
    const ring = this.#ring;
    const w = this.#w;
    const maxsize = this.#maxsize;
    let direct: boolean;
    let wasEmpty = false;
    let roomLeft = false;
    ring.lock();
    try {
      if (w[CLOSED]) throw new ClosedError("cannot put on a closed queue");
      const size = w[SIZE]!;
      if (!ignoreBound && maxsize > 0 && size >= maxsize) return FULL;
      direct =
        bytes.length <= ring.inlineMax &&
        recordBytes(bytes.length) <= ring.free &&
        w[SPILLED] === 0 &&
        !this.#behindSpill();
      if (direct) {
        wasEmpty = w[RECORDS] === 0;
        ring.write(bytes);
        if (this.#joinable) Atomics.add(w, UNFINISHED, 1);
      }
      // a bounded queue counts the item now, so that the bound holds while it travels
      if (direct || maxsize > 0) Atomics.store(w, SIZE, size + 1);
      roomLeft = maxsize > 0 && size + 1 < maxsize;
    } finally {
      ring.unlock();
    }
    // wake a reader only when the ring stops being empty: readers pass the wake-up on
    if (direct) ring.signal(NOT_EMPTY, GETTERS, wasEmpty ? 1 : 0);
    if (roomLeft) ring.passOn(NOT_FULL, PUTTERS);
    if (direct) return undefined;
    return this.#spillOut(ownedBytes(bytes), maxsize > 0);
  }

  /**
   * Hands bytes to the creator's store. From another process, the puts of one tick travel as one
   * message; each resolves once the creator has them. If they cannot get there, a reservation is undone.
   */
  #spillOut(bytes: Uint8Array, reserved: boolean): undefined | Promise<void> {
    if (this.#spill) {
      const [taken, last] = this.#spill.accept([bytes], reserved);
      if (taken === 0) throw new ClosedError("cannot put on a closed queue");
      this.#lastSpill = last;
      return undefined;
    }
    this.#spillsInFlight++;
    let batch = this.#outbox;
    if (!batch) {
      const next: Outbox = { items: [], reserved, sent: undefined as never };
      // sent from a microtask: before anything awaiting this tick, such as a child winding up to exit
      next.sent = new Promise((resolve) => queueMicrotask(() => resolve(this.#send(next))));
      this.#outbox = batch = next;
    }
    const index = batch.items.push(bytes) - 1;
    return batch.sent
      .then(
        ([taken]) => {
          if (index >= taken)
            throw new ClosedError("cannot put on a closed queue: it was closed while the item was on its way");
        },
        (error) => {
          if (reserved) this.#unreserve();
          throw new ProcessError(
            "this item did not fit in the queue's shared memory and had to go through the process that created the queue, which failed to take it",
            { cause: error },
          );
        },
      )
      .finally(() => this.#spillsInFlight--);
  }

  /** Sends a batch of spilled puts (once: at the end of its tick, or earlier when a close must follow it). */
  #send(batch: Outbox): Promise<[number, number]> {
    if (!batch.reply) {
      if (this.#outbox === batch) this.#outbox = undefined;
      const call = callRemote(this.#owner!, "put", [batch.items, batch.reserved]) as Promise<[number, number]>;
      batch.reply = call.then((reply) => {
        this.#lastSpill = reply[1];
        return reply;
      });
    }
    return batch.reply;
  }

  #unreserve(): void {
    this.#ring.lock();
    Atomics.sub(this.#w, SIZE, 1);
    this.#ring.unlock();
  }

  get(block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<unknown> {
    let first: unknown;
    try {
      first = this.#tryTake();
    } catch (error) {
      return Promise.reject(error);
    }
    // items are never promises (put refuses them): a promise here is a large item being fetched
    if (first !== EMPTY) return first instanceof Promise ? first : Promise.resolve(first);
    if (!block) return Promise.reject(new Empty(emptyMessage(false, timeout)));
    return this.#getWhenThere(timeout, signal);
  }

  async #getWhenThere(timeout: number | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    const deadline = deadlineFor(timeout);
    // Look once more after one turn of the event loop before sleeping: a producer that is about as
    // fast as this reader has usually put something by then, and is spared a wake system call.
    await new Promise(setImmediate);
    for (let asked = false; ; asked = true) {
      const seq = Atomics.load(this.#w, NOT_EMPTY);
      const item = this.#tryTake();
      if (item !== EMPTY) return item;
      const left = deadline - performance.now();
      if (left <= 0 || signal?.aborted) {
        this.#passOnIfLeft();
        if (signal?.aborted) throw signal.reason;
        throw new Empty(emptyMessage(true, timeout));
      }
      await this.#sleepForItem(seq, left, asked, signal);
    }
  }

  /**
   * Sleeps until the ring may have a record; while items are held back by the creator, asks it to
   * feed them (again after each `FEED_RETRY_MS`, should a request have been lost with its sender).
   */
  #sleepForItem(seq: number, left: number, again: boolean, signal: AbortSignal | undefined): Promise<void> {
    if (Atomics.load(this.#w, SPILLED) > 0) {
      this.#askFeed(again);
      left = Math.min(left, FEED_RETRY_MS);
    }
    return this.#ring.sleep(NOT_EMPTY, GETTERS, seq, left, signal);
  }

  /** Takes the head item: its value, a promise of it (a large item), or EMPTY. */
  #tryTake(): unknown {
    const ring = this.#ring;
    const w = this.#w;
    if (Atomics.load(w, RECORDS) === 0) {
      if (this.#spill && Atomics.load(w, SPILLED) > 0) this.#spill.feed();
      if (Atomics.load(w, RECORDS) === 0) {
        if (Atomics.load(w, CLOSED) && Atomics.load(w, SIZE) === 0) {
          throw new ClosedError("the queue is closed and empty");
        }
        return EMPTY;
      }
    }
    let header: number;
    let size: number;
    let left: number;
    let halfEmpty: boolean;
    ring.lock();
    try {
      if (w[RECORDS] === 0) return EMPTY;
      header = ring.peek();
      ring.take(header > 0 ? inbox(header) : undefined);
      size = w[SIZE]!;
      Atomics.store(w, SIZE, size - 1);
      left = w[RECORDS]!;
      halfEmpty = ring.used <= ring.capacity >> 1;
    } finally {
      ring.unlock();
    }
    if (this.#maxsize > 0) ring.signal(NOT_FULL, PUTTERS, size === this.#maxsize ? 1 : 0);
    if (left > 0) ring.passOn(NOT_EMPTY, GETTERS);
    if (halfEmpty && Atomics.load(w, SPILLED) > 0) this.#askFeed(false);
    // nothing between the copy and here reuses the inbox
    if (header >= 0) return unpackInbox(header);
    return this.#fetch(-header);
  }

  async #fetch(id: number): Promise<unknown> {
    if (this.#spill) return unpackItem(this.#spill.take(id));
    return unpackItem((await callRemote(this.#owner!, "take", [id])) as Uint8Array);
  }

  /** Asks the creator to move held items into the ring (at most one request in flight, unless `again`). */
  #askFeed(again: boolean): void {
    if (this.#spill) {
      this.#spill.feed();
      return;
    }
    if (Atomics.compareExchange(this.#w, FEED_ASKED, 0, 1) !== 0 && !again) return;
    callRemote(this.#owner!, "feed", []).catch(() => {});
  }

  /** A reader leaving without an item passes its wake-up on, if there are items for others. */
  #passOnIfLeft(): void {
    if (Atomics.load(this.#w, RECORDS) > 0) this.#ring.passOn(NOT_EMPTY, GETTERS);
  }

  size(): number {
    return Atomics.load(this.#w, SIZE);
  }

  close(): void {
    // puts from here still on their way to the creator must arrive before the close: send it after them
    if (this.#spillsInFlight > 0) {
      if (this.#outbox) this.#send(this.#outbox).catch(() => {});
      callRemote(this.#owner!, "close", []).catch(() => this.#ring.close());
    } else this.#ring.close();
  }

  async poll(timeout: number | undefined): Promise<boolean> {
    const w = this.#w;
    const deadline = deadlineFor(timeout);
    for (let asked = false; ; asked = true) {
      const seq = Atomics.load(w, NOT_EMPTY);
      if (this.#spill && Atomics.load(w, RECORDS) === 0 && Atomics.load(w, SPILLED) > 0) this.#spill.feed();
      if (Atomics.load(w, RECORDS) > 0 || Atomics.load(w, CLOSED)) {
        // a poller does not take the item: a reader may be sleeping on it
        if (asked) this.#passOnIfLeft();
        return true;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        if (asked) this.#passOnIfLeft();
        return false;
      }
      await this.#sleepForItem(seq, left, asked, undefined);
    }
  }

  taskDone(): void {
    const w = this.#w;
    for (;;) {
      const unfinished = Atomics.load(w, UNFINISHED);
      if (unfinished <= 0) throw new ProcessError("taskDone() called more times than there were items");
      if (Atomics.compareExchange(w, UNFINISHED, unfinished, unfinished - 1) === unfinished) {
        if (unfinished === 1) this.#ring.signalAll(ALL_DONE, JOINERS);
        return;
      }
    }
  }

  async join(signal: AbortSignal | undefined): Promise<void> {
    const w = this.#w;
    for (;;) {
      const seq = Atomics.load(w, ALL_DONE);
      if (Atomics.load(w, UNFINISHED) <= 0) return;
      if (signal?.aborted) throw signal.reason;
      await this.#ring.sleep(ALL_DONE, JOINERS, seq, Number.POSITIVE_INFINITY, signal);
    }
  }

  reduce(transport: Transport): RingState {
    checkTransport(this.#ring.block.ref, transport, "Queue");
    this.#owner ??= serve(this.#spill!);
    return { owner: this.#owner, ring: this.#ring.block.ref };
  }

  get where(): string {
    return this.#spill ? "shared memory, creator" : "shared memory";
  }
}
