/**
 * A ring of byte records in shared memory: the storage under a shared-memory Queue.
 *
 *   header: Int32 words                         data: `capacity` bytes, records wrap around
 *   ┌──────┬────────┬─────────────┬──────────┐  ┌──────────────────────────────────────────┐
 *   │ lock │ counts │ head / tail │ seq+wait │  │ … [len][payload…pad] [len][pay│ [-id] …  │
 *   └──────┴────────┴─────────────┴──────────┘  └───────────▲──────────────────────▲───────┘
 *                                                          head                   tail
 *
 * A record is a 32-bit header and its payload padded to 4 bytes: a header >= 0 is the payload's
 * length; a negative header `-id` is a reference to an item kept elsewhere (the queue's creator
 * holds items too large for the ring; see ring-queue.ts). Records are 4-byte aligned, so a header
 * never straddles the end; a payload may, and is then copied in two parts.
 *
 * The lock is a word (free, taken, or taken with sleepers) taken with a compare-and-swap, spun on
 * briefly, then slept on with a futex-style wait; only a release that finds sleepers makes the wake
 * system call. It guards the data area, head, tail and the counts. Critical sections are a memcpy
 * and a few stores, so a synchronous wait is never long. A process killed while holding it would
 * leave it taken: a waiter that finds the holder's process gone (the `OWNER` word) takes it over
 * (threads of one process cannot be told apart, so there it cannot).
 *
 * Waiting on a condition ("not empty", "not full", "all done") uses a sequence word and a count of
 * sleepers: read the sequence, test the condition, count yourself in, sleep while the sequence is
 * unchanged. A change bumps the sequence, and calls the wake system call only when someone sleeps.
 */
import { threadId } from "../identity.js";
import { processRuns } from "../pids.js";
import { type Block, type BlockRef, allocate, attach } from "./shared-memory.js";
import type { SharedMemoryKind } from "../runtime.js";

/** Header word indices. */
export const LOCK = 0;
/** Who holds the lock (for taking it over from a dead process). */
const OWNER = 1;
/** Items in the queue: records in the ring plus items its creator holds (`SPILLED`). */
export const SIZE = 2;
/** Records in the ring. */
export const RECORDS = 3;
/** Items the queue's creator holds, not yet written as records (changed by the creator only). */
export const SPILLED = 4;
const HEAD = 5;
const TAIL = 6;
const USED = 7;
export const CLOSED = 8;
/** JoinableQueue: items put and not yet marked done. */
export const UNFINISHED = 9;
/** Sequence and sleeper words of the three conditions. */
export const NOT_EMPTY = 10;
export const GETTERS = 11;
export const NOT_FULL = 12;
export const PUTTERS = 13;
export const ALL_DONE = 14;
export const JOINERS = 15;
/** Set by a reader that asked the creator to move held items into the ring; cleared by the creator. */
export const FEED_ASKED = 16;
/** The number of the last held item the creator wrote as a record (they are numbered as they arrive). */
export const SPILL_WRITTEN = 17;
const CAPACITY = 18;
const WORDS = 32;
const HEADER_BYTES = WORDS * 4;

/** The data area of a ring made with the default size: 256 KiB. */
export const DEFAULT_CAPACITY = 256 * 1024;
/** Bytes a reference record takes. */
export const REF_BYTES = 4;
const EVERYONE = 0x7fffffff;

/** Lock word states. */
const FREE = 0;
const TAKEN = 1;
const CONTENDED = 2;

/** This thread's lock owner id: its pid and thread, unique on the machine, never 0. */
const me = ((process.pid % 0x1000000) * 64 + (threadId % 64)) | 0 || 1;

/** Bytes a record with a payload of `length` bytes takes in the ring. */
export function recordBytes(length: number): number {
  return 4 + ((length + 3) & ~3);
}

/** A ring in a block of shared memory. Methods marked "locked" need the caller to hold the lock. */
export class Ring {
  readonly block: Block;
  /** The header words. */
  readonly words: Int32Array;
  readonly capacity: number;
  /** Items larger than this are not copied into the ring (a quarter of it). */
  readonly inlineMax: number;
  readonly #d32: Int32Array;
  readonly #u8: Uint8Array;

  /** Allocates a zeroed ring of `capacity` data bytes in the memory `kind`. */
  static allocate(kind: SharedMemoryKind, capacity = DEFAULT_CAPACITY): Ring {
    const block = allocate(HEADER_BYTES + capacity, kind);
    new Int32Array(block.buffer, block.offset, WORDS)[CAPACITY] = capacity;
    return new Ring(block);
  }

  /** Maps the ring `ref` names. */
  static attach(ref: BlockRef): Ring {
    return new Ring(attach(ref));
  }

  private constructor(block: Block) {
    this.block = block;
    this.words = new Int32Array(block.buffer, block.offset, WORDS);
    this.capacity = this.words[CAPACITY]!;
    this.inlineMax = this.capacity >> 2;
    this.#d32 = new Int32Array(block.buffer, block.offset + HEADER_BYTES, this.capacity >> 2);
    this.#u8 = new Uint8Array(block.buffer, block.offset + HEADER_BYTES, this.capacity);
  }

  lock(): void {
    if (Atomics.compareExchange(this.words, LOCK, FREE, TAKEN) !== FREE) this.#lockSlowly();
    this.words[OWNER] = me;
  }

  #lockSlowly(): void {
    const w = this.words;
    // the holder is copying at most a record: spinning a little usually beats a system call
    for (let spin = 0; spin < 100; spin++) {
      if (Atomics.load(w, LOCK) === FREE && Atomics.compareExchange(w, LOCK, FREE, TAKEN) === FREE) return;
    }
    // Drepper's futex mutex: mark the lock contended, so that its release wakes one sleeper
    while (Atomics.exchange(w, LOCK, CONTENDED) !== FREE) {
      const owner = Atomics.load(w, OWNER);
      if (this.block.waiter.wait(w, LOCK, CONTENDED, 100) === "timed-out" && ownerGone(owner)) {
        // its holder died: the first to notice holds it from now on (the word stays CONTENDED)
        if (Atomics.compareExchange(w, OWNER, owner, me) === owner) return;
      }
    }
  }

  unlock(): void {
    if (Atomics.exchange(this.words, LOCK, FREE) === CONTENDED) this.block.waiter.wake(this.words, LOCK, 1);
  }

  /** Locked: free bytes in the data area. */
  get free(): number {
    return this.capacity - this.words[USED]!;
  }

  /** Locked: bytes in use in the data area. */
  get used(): number {
    return this.words[USED]!;
  }

  /** Locked: appends a record holding `payload` (the caller checked that it fits). */
  write(payload: Uint8Array): void {
    const w = this.words;
    const cap = this.capacity;
    const length = payload.length;
    const tail = w[TAIL]!;
    this.#d32[tail >> 2] = length;
    const at = tail + 4 === cap ? 0 : tail + 4;
    const first = cap - at;
    const u8 = this.#u8;
    if (length <= 16 && length <= first) {
      // TypedArray#set costs more than a short loop
      for (let i = 0; i < length; i++) u8[at + i] = payload[i]!;
    } else if (length <= first) {
      u8.set(payload, at);
    } else {
      u8.set(payload.subarray(0, first), at);
      u8.set(payload.subarray(first), 0);
    }
    this.#advance(TAIL, recordBytes(length));
    w[USED]! += recordBytes(length);
    Atomics.add(w, RECORDS, 1);
  }

  /** Locked: appends a reference record to item `id` (> 0) kept elsewhere. */
  writeRef(id: number): void {
    const w = this.words;
    this.#d32[w[TAIL]! >> 2] = -id;
    this.#advance(TAIL, REF_BYTES);
    w[USED]! += REF_BYTES;
    Atomics.add(w, RECORDS, 1);
  }

  /** Locked, with a record in the ring: the head record's header (its length, or `-id`). */
  peek(): number {
    return this.#d32[this.words[HEAD]! >> 2]!;
  }

  /**
   * Locked: removes the head record, copying its payload (when it has one) to `out`, which must
   * hold `peek()` bytes.
   */
  take(out: Uint8Array | undefined): void {
    const w = this.words;
    const header = this.peek();
    const length = Math.max(header, 0);
    if (out && length > 0) {
      const cap = this.capacity;
      const head = w[HEAD]!;
      const at = head + 4 === cap ? 0 : head + 4;
      const first = cap - at;
      const u8 = this.#u8;
      if (length <= 16 && length <= first) {
        for (let i = 0; i < length; i++) out[i] = u8[at + i]!;
      } else if (length <= first) {
        out.set(u8.subarray(at, at + length));
      } else {
        out.set(u8.subarray(at, cap));
        out.set(u8.subarray(0, length - first), first);
      }
    }
    const bytes = header < 0 ? REF_BYTES : recordBytes(length);
    this.#advance(HEAD, bytes);
    w[USED]! -= bytes;
    Atomics.sub(w, RECORDS, 1);
  }

  #advance(word: number, bytes: number): void {
    const next = this.words[word]! + bytes;
    this.words[word] = next >= this.capacity ? next - this.capacity : next;
  }

  /** Marks the queue closed and wakes every reader and writer. */
  close(): void {
    Atomics.store(this.words, CLOSED, 1);
    this.signalAll(NOT_EMPTY, GETTERS);
    this.signalAll(NOT_FULL, PUTTERS);
  }

  /** Bumps the sequence `word` and wakes up to `count` (may be 0) of the sleepers counted in `sleepers`. */
  signal(word: number, sleepers: number, count: number): void {
    Atomics.add(this.words, word, 1);
    if (count > 0 && Atomics.load(this.words, sleepers) > 0) this.block.waiter.wake(this.words, word, count);
  }

  /** Bumps the sequence `word` and wakes every sleeper. */
  signalAll(word: number, sleepers: number): void {
    this.signal(word, sleepers, EVERYONE);
  }

  /** If anyone sleeps on `word`, bumps it and wakes one (to pass on a wake-up, or more work). */
  passOn(word: number, sleepers: number): void {
    if (Atomics.load(this.words, sleepers) > 0) this.signal(word, sleepers, 1);
  }

  /**
   * Sleeps, counted in `sleepers`, while the sequence `word` still reads `seq`, at most `timeout` ms
   * (may return early: callers re-check their condition). An abort of `signal` ends the sleep.
   */
  async sleep(word: number, sleepers: number, seq: number, timeout: number, signal?: AbortSignal): Promise<void> {
    const w = this.words;
    Atomics.add(w, sleepers, 1);
    // waking every sleeper of the word is harmless (they re-check), and reaches this one
    const onAbort = () => this.block.waiter.wake(w, word, EVERYONE);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.block.waiter.waitAsync(w, word, seq, timeout);
    } finally {
      Atomics.sub(w, sleepers, 1);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** True when the lock owner `owner` was a process that no longer exists. */
function ownerGone(owner: number): boolean {
  const pid = owner >>> 6;
  if (pid === process.pid % 0x1000000) return false;
  return !processRuns(pid);
}
