/**
 * Calls sent over a channel and waiting for their replies, by number: the bookkeeping shared by
 * the object broker's connections, manager clients and the fallback agent.
 */

interface Waiting {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** What the owner of the channel does for its pending calls. */
export interface CallHooks {
  /** Asks the other side to give up call `q` (its caller aborted). */
  cancel(q: number): void;
  /** Called with true when the first call starts and false when the last one ends (ref/unref). */
  busy(busy: boolean): void;
}

/** The pending calls of one channel. */
export class PendingCalls {
  #calls = new Map<number, Waiting>();
  #next = 1;

  constructor(private readonly hooks: CallHooks) {}

  /** Calls waiting for a reply. */
  get size(): number {
    return this.#calls.size;
  }

  /** True while call `q` waits. */
  has(q: number): boolean {
    return this.#calls.has(q);
  }

  /**
   * Starts a call: `send(q)` sends it. An abort of `signal` asks the other side to stop; the call
   * then rejects with the abort's reason, unless the other side had already finished it.
   */
  start(send: (q: number) => void, signal?: AbortSignal): Promise<unknown> {
    const q = this.#next++;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.hooks.cancel(q);
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#calls.delete(q);
        if (this.#calls.size === 0) this.hooks.busy(false);
      };
      this.#calls.set(q, {
        resolve: (value) => {
          done();
          resolve(value);
        },
        reject: (error) => {
          done();
          reject(signal?.aborted ? signal.reason : error);
        },
      });
      if (this.#calls.size === 1) this.hooks.busy(true);
      send(q);
    });
  }

  /** Settles call `q` (a reply for a call no longer waiting is ignored). */
  settle(q: number, ok: boolean, value: unknown): void {
    const call = this.#calls.get(q);
    if (ok) call?.resolve(value);
    else call?.reject(value);
  }

  /** Rejects every waiting call with `error`. */
  rejectAll(error: unknown): void {
    for (const call of [...this.#calls.values()]) call.reject(error);
  }
}
