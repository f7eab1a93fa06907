/**
 * The claim cells of a WorkerSet: one Int32 per worker slot, in memory shared with the workers.
 * Before starting its task `id` (ids count 1, 2, 3… per worker) a worker moves its cell from
 * `id - 1` to `id` (compare-and-swap), so the cell always says which jobs have started, even while
 * the worker is busy in a long synchronous task and reads no message. The set takes back the jobs a
 * worker has not started by moving the cell past them; the worker's swap then fails and it skips
 * them. A slot is reused once its worker has exited.
 */
import { loadNative } from "../shm/native.js";
import { type BlockRef, allocate } from "../shm/shared-memory.js";
import type { SharedMemoryKind } from "../runtime.js";

export class ClaimCells {
  readonly #cell: Int32Array;
  readonly #free: number[];
  /** Where the cells are, for a worker to map them. */
  readonly block: BlockRef;

  /** Cells for `size` workers in the memory `kind`, or null where no memory is shared (no addon). */
  static make(size: number, kind: SharedMemoryKind): ClaimCells | null {
    return kind === "shm" && !loadNative() ? null : new ClaimCells(size, kind);
  }

  private constructor(size: number, kind: SharedMemoryKind) {
    const block = allocate(4 * size, kind);
    this.#cell = new Int32Array(block.buffer, block.offset, size);
    this.block = block.ref;
    this.#free = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** A free slot for a new worker, its cell at 0 (at most `size` workers are alive at once). */
  take(): number {
    const slot = this.#free.pop()!;
    Atomics.store(this.#cell, slot, 0);
    return slot;
  }

  /** Gives back the slot of a worker that has exited. */
  give(slot: number): void {
    this.#free.push(slot);
  }

  /** Whether the worker in `slot` has started its task `id`. */
  hasStarted(slot: number, id: number): boolean {
    return ((Atomics.load(this.#cell, slot) - id) | 0) >= 0;
  }

  /**
   * Moves the cell of `slot` past `seq` (the worker's last task id), so that the worker skips the
   * tasks it has not started, of the last `held` it was sent. Returns how many it skips.
   */
  takeBack(slot: number, seq: number, held: number): number {
    for (;;) {
      const claimed = Atomics.load(this.#cell, slot);
      const unstarted = Math.min((seq - claimed) | 0, held);
      if (unstarted <= 0) return 0;
      // the worker may claim one meanwhile: then look again
      if (Atomics.compareExchange(this.#cell, slot, claimed, seq) === claimed) return unstarted;
    }
  }
}
