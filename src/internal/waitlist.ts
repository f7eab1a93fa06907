/**
 * Parking for in-process waiters: each blocking operation is "try the non-blocking twin; if it
 * fails, park here until woken, the deadline, or an abort; try again". A wake that reaches a waiter
 * which has already given up is passed to the next one, so no wake-up is lost.
 */

interface Parked {
  wake(): void;
}

/** A FIFO of parked waiters. */
export class WaitList {
  #parked = new Set<Parked>();

  get size(): number {
    return this.#parked.size;
  }

  /** Wakes the longest-waiting waiter, if any. */
  wakeOne(): void {
    for (const waiter of this.#parked) {
      this.#parked.delete(waiter);
      waiter.wake();
      return;
    }
  }

  /** Wakes every waiter. */
  wakeAll(): void {
    const all = [...this.#parked];
    this.#parked.clear();
    for (const waiter of all) waiter.wake();
  }

  /**
   * Parks until woken (true) or until `deadline` (a `performance.now()` time, Infinity for none;
   * false). Rejects with the signal's reason on abort.
   */
  wait(deadline: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (deadline <= performance.now()) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        this.#parked.delete(waiter);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Parked = {
        wake: () => {
          cleanup();
          resolve(true);
        },
      };
      const onAbort = () => {
        cleanup();
        reject(signal!.reason);
      };
      this.#parked.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (deadline !== Number.POSITIVE_INFINITY) {
        timer = setTimeout(
          () => {
            cleanup();
            resolve(false);
          },
          Math.max(0, deadline - performance.now()),
        );
      }
    });
  }
}

/** The deadline (a `performance.now()` time) `timeout` ms from now; Infinity for none (wait forever). */
export function deadlineFor(timeout: number | undefined): number {
  return timeout === undefined || timeout === null ? Number.POSITIVE_INFINITY : performance.now() + timeout;
}
