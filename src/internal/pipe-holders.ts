/**
 * Who holds the copies of a Pipe's two ends, in every process and thread, so that a direction ends
 * when the last copy of the end that writes it is gone: closed, or its holder gone however it ended
 * (killed, terminated, `process.exit()`, a crash).
 *
 *   per end:  [0] ended  [1] last claim number  [2] copies without a slot (every slot was taken)
 *             then SLOTS slots of [pid, thread, n]:  n > 0  that thread holds n copies
 *                                                    n < 0  claim -n: a copy that thread sent,
 *                                                           which no one has received yet
 *
 * Sending an end makes a claim: the copy counts from then, so the sender may close its own at once
 * (Python's `p.start(); child_conn.close()`). The first receiver of that copy takes the claim over;
 * every later receiver of the same encoding (a pool's initargs, received by each worker) counts a
 * copy of its own. A slot counts while its thread runs: the kernel says whether a pid exists, and
 * this process's record (internal/identity.ts) whether one of its own threads has ended. So a claim
 * whose sender is gone is void, as a copy put on a queue no one reads must not hold a reader.
 *
 * Only a reader that found nothing to read looks for holders that are gone (`reap`), so sending and
 * receiving cost what they did. The table is a RawArray and a Lock, so it works wherever those do
 * (in shared memory, or held by an agent server without the native addon).
 */
import { threadHasEnded, threadId } from "./identity.js";
import { processRuns } from "./pids.js";

/** Slots per end: holders and unclaimed copies beyond this still count, but never expire. */
const SLOTS = 128;
const ENDED = 0;
const LAST_CLAIM = 1;
const UNSLOTTED = 2;
/** Who closed the last copy: that thread closes the queue too, after what it sent (0: no one, it was reaped). */
const CLOSER_PID = 3;
const CLOSER_THREAD = 4;
const HEADER = 5;
const END_WORDS = HEADER + SLOTS * 3;

/** An end of the pipe, by the direction it writes. */
export type Side = 0 | 1;

/** The table's lock: a public Lock (connection.ts makes it), so that it travels as one. */
export interface HoldersLock {
  acquireSync(): unknown;
  release(): void;
}

/** What travels with each end: the table's words (a RawArray of HOLDERS_WORDS int32) and its lock. */
export interface HoldersState {
  words: ArrayLike<number>;
  lock: HoldersLock;
}

/** How many int32 words a table has. */
export const HOLDERS_WORDS = 2 * END_WORDS;

export class PipeHolders {
  readonly #words: Int32Array;
  readonly #lock: HoldersLock;

  /** A table for a new pipe over fresh `state`, whose two ends are held by this thread. */
  static create(state: HoldersState): PipeHolders {
    const holders = new PipeHolders(state);
    holders.hold(0);
    holders.hold(1);
    return holders;
  }

  constructor(state: HoldersState) {
    this.#words = state.words as Int32Array;
    this.#lock = state.lock;
  }

  get state(): HoldersState {
    return { words: this.#words, lock: this.#lock };
  }

  /** Counts one more copy of `side`, held by this thread. */
  hold(side: Side): void {
    this.#edit(side, (end) => addCopy(end));
  }

  /** Counts the copy being sent until someone receives it; returns its claim number. */
  claim(side: Side): number {
    return this.#edit(side, (end) => {
      const claim = ++end[LAST_CLAIM]!;
      if (!put(end, -claim)) end[UNSLOTTED]!++;
      return claim;
    });
  }

  /** A copy sent with `claim` arrived here: the first to arrive takes the claim over. */
  take(side: Side, claim: number): void {
    this.#edit(side, (end) => {
      for (let i = HEADER; i < END_WORDS; i += 3) {
        if (end[i] !== 0 && end[i + 2] === -claim) end[i] = end[i + 1] = end[i + 2] = 0;
      }
      addCopy(end);
    });
  }

  /**
   * One copy of `side` held here closed. True when that was the last: the direction it writes ends,
   * and this thread closes its queue (after what it sent, which may still be on its way).
   */
  release(side: Side): boolean {
    return this.#edit(side, (end) => {
      const slot = find(end, process.pid, threadId);
      if (slot >= 0) {
        if (--end[slot + 2]! === 0) end[slot] = end[slot + 1] = 0;
      } else if (end[UNSLOTTED]! > 0) end[UNSLOTTED]!--;
      if (end[ENDED]) return false;
      if (!settle(end)) return false;
      end[CLOSER_PID] = process.pid;
      end[CLOSER_THREAD] = threadId;
      return true;
    });
  }

  /**
   * Forgets the copies and claims of holders that are gone. True when the reader must close the
   * direction `side` writes itself: it has ended, and no live thread that closed it will.
   */
  reap(side: Side): boolean {
    return this.#edit(side, (end) => {
      const pids = new Map<number, boolean>();
      for (let i = HEADER; i < END_WORDS; i += 3) {
        if (end[i] !== 0 && gone(end[i]!, end[i + 1]!, pids)) end[i] = end[i + 1] = end[i + 2] = 0;
      }
      if (!settle(end)) return false;
      return end[CLOSER_PID] === 0 || gone(end[CLOSER_PID]!, end[CLOSER_THREAD]!, pids);
    });
  }

  /** Runs `change` on a copy of `side`'s words under the lock, and writes back the words it changed. */
  #edit<T>(side: Side, change: (end: number[]) => T): T {
    this.#lock.acquireSync();
    try {
      // one read of the whole table: without shared memory, every access is a call to an agent server
      const all = [...this.#words];
      const end = all.slice(side * END_WORDS, (side + 1) * END_WORDS);
      const result = change(end);
      for (let i = 0; i < END_WORDS; i++) {
        if (end[i] !== all[side * END_WORDS + i]) this.#words[side * END_WORDS + i] = end[i]!;
      }
      return result;
    } finally {
      this.#lock.release();
    }
  }
}

function find(end: number[], pid: number, thread: number): number {
  for (let i = HEADER; i < END_WORDS; i += 3) {
    if (end[i] === pid && end[i + 1] === thread && end[i + 2]! > 0) return i;
  }
  return -1;
}

function put(end: number[], n: number): boolean {
  for (let i = HEADER; i < END_WORDS; i += 3) {
    if (end[i] === 0) {
      end[i] = process.pid;
      end[i + 1] = threadId;
      end[i + 2] = n;
      return true;
    }
  }
  return false;
}

function addCopy(end: number[]): void {
  const slot = find(end, process.pid, threadId);
  if (slot >= 0) end[slot + 2]!++;
  else if (!put(end, 1)) end[UNSLOTTED]!++;
}

/** Marks the end ended once nothing counts; true if it has ended (now or before). Ended is final. */
function settle(end: number[]): boolean {
  if (end[ENDED]) return true;
  if (end[UNSLOTTED]! > 0) return false;
  for (let i = HEADER; i < END_WORDS; i += 3) if (end[i] !== 0) return false;
  end[ENDED] = 1;
  return true;
}

/** True when thread `thread` of process `pid` is known to be gone. */
function gone(pid: number, thread: number, pids: Map<number, boolean>): boolean {
  if (pid === process.pid) return thread !== 0 && threadHasEnded(thread);
  let dead = pids.get(pid);
  if (dead === undefined) {
    dead = !processRuns(pid);
    pids.set(pid, dead);
  }
  // a thread of another process: only that process knows; it counts while the process runs
  return dead;
}
