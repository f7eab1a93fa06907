/**
 * The store of a shared-memory queue's creator: items that puts could not write to the ring.
 *
 *   put elsewhere ─(broker, a batch per tick)─► accept ─► waiting (arrival order) ─► feed ─► ring
 *   put here ─────────────────────────────────► accept      large items: kept ◄─ take(id) ◄─ reader
 *
 * `accept` counts the items (`SIZE`, `UNFINISHED`, `SPILLED`) and numbers them; `feed` writes
 * them to the ring in order while they fit, a large one as a reference (`-id`) to bytes kept here,
 * and publishes the number of the last one written (`SPILL_WRITTEN`), which producers compare with
 * their own items' numbers to keep their order (ring-queue.ts). It feeds when items arrive and when
 * a reader asks (`FEED_ASKED`).
 */
import { ProcessError } from "../../errors.js";
import type { Served } from "../wire/broker.js";
import { Deque } from "../deque.js";
import {
  CLOSED,
  FEED_ASKED,
  GETTERS,
  NOT_EMPTY,
  RECORDS,
  REF_BYTES,
  type Ring,
  SIZE,
  SPILLED,
  SPILL_WRITTEN,
  UNFINISHED,
  recordBytes,
} from "../shm/ring.js";

/** The creator's store for items that are not (yet) in the ring. */
export class Spill implements Served {
  readonly #ring: Ring;
  readonly #joinable: boolean;
  /** Items accepted, in arrival order, waiting for room in the ring. */
  readonly #waiting = new Deque<Uint8Array>();
  /** Large items whose reference is in the ring, by id. */
  readonly #kept = new Map<number, Uint8Array>();
  #nextId = 1;
  /** Numbers of the last item accepted and of the last one written to the ring (both wrap). */
  #accepted = 0;
  #written = 0;

  constructor(ring: Ring, joinable: boolean) {
    this.#ring = ring;
    this.#joinable = joinable;
  }

  /**
   * Takes items that puts could not write to the ring, writes what fits, and returns how many it
   * took and the number of the last (compare with `SPILL_WRITTEN`). `reserved`: the putters already
   * counted them in `SIZE` (a bounded queue). Items that arrive after the queue was closed are
   * refused (the putter gets ClosedError): they are the tail of the batch.
   */
  accept(items: Uint8Array[], reserved: boolean): [taken: number, last: number] {
    const ring = this.#ring;
    const w = ring.words;
    let taken = items.length;
    ring.lock();
    try {
      if (w[CLOSED]) {
        if (reserved) Atomics.sub(w, SIZE, items.length);
        taken = 0;
      } else {
        if (!reserved) Atomics.add(w, SIZE, taken);
        if (this.#joinable) Atomics.add(w, UNFINISHED, taken);
        Atomics.add(w, SPILLED, taken);
      }
    } finally {
      ring.unlock();
    }
    for (let i = 0; i < taken; i++) this.#waiting.push(items[i]!);
    this.#accepted = (this.#accepted + taken) | 0;
    if (taken > 0) this.feed();
    return [taken, this.#accepted];
  }

  /** Moves waiting items into the ring, in order, while they fit. */
  feed(): void {
    const ring = this.#ring;
    const w = ring.words;
    Atomics.store(w, FEED_ASKED, 0);
    if (this.#waiting.length === 0) return;
    let written = 0;
    let wasEmpty = false;
    ring.lock();
    try {
      wasEmpty = w[RECORDS] === 0;
      for (let bytes = this.#waiting.peek(); bytes; bytes = this.#waiting.peek()) {
        if (bytes.length <= ring.inlineMax) {
          if (recordBytes(bytes.length) > ring.free) break;
          ring.write(bytes);
        } else {
          if (REF_BYTES > ring.free) break;
          const id = this.#nextId;
          this.#nextId = id >= 0x7ffffff0 ? 1 : id + 1;
          this.#kept.set(id, bytes);
          ring.writeRef(id);
        }
        this.#waiting.shift();
        Atomics.sub(w, SPILLED, 1);
        this.#written = (this.#written + 1) | 0;
        written++;
      }
      Atomics.store(w, SPILL_WRITTEN, this.#written);
    } finally {
      ring.unlock();
    }
    if (written > 0) ring.signal(NOT_EMPTY, GETTERS, wasEmpty ? 1 : 0);
  }

  /** The bytes of the large item `id`, handed over once. */
  take(id: number): Uint8Array {
    const bytes = this.#kept.get(id);
    if (!bytes) throw new ProcessError(`queue item ${id} is missing from its creator`);
    this.#kept.delete(id);
    return bytes;
  }

  call(op: string, args: unknown[]): unknown {
    switch (op) {
      case "put":
        return this.accept(args[0] as Uint8Array[], args[1] as boolean);
      case "take":
        return this.take(args[0] as number);
      case "feed":
        this.feed();
        return null;
      case "close":
        this.#ring.close();
        return null;
      default:
        throw new ProcessError(`unknown queue operation ${op}`);
    }
  }
}
