/**
 * Calls sent over a channel and waiting for their replies, by number: the bookkeeping shared by
 * the object broker's connections, manager clients and the fallback agent.
 */

interface Waiting {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  tracked: boolean;
}

/** What the owner of the channel does for its pending calls. */
export interface CallHooks {
  /** Asks the other side to give up call `q` (its caller aborted). */
  cancel(q: number): void;
  /** Called with true when the first call starts and false when the last one ends (ref/unref). */
  busy(busy: boolean): void;
}

/**
 * The pending calls of one channel. A call costs one promise and one record: a round trip's
 * bookkeeping is on the path of every small call.
 */
export class PendingCalls {
  #calls = new Map<number, Waiting>();
  #next = 1;
  #tracked = 0;
  #drained: (() => void)[] = [];

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
   * then rejects with the abort's reason, unless the other side had already finished it. A
   * `tracked` call is one `drained()` waits for.
   */
  start(send: (q: number) => void, signal?: AbortSignal, tracked = false): Promise<unknown> {
    const q = this.#next++;
    let call!: Waiting;
    const promise = new Promise((resolve, reject) => {
      call = { resolve, reject, signal, onAbort: undefined, tracked };
    });
    if (signal) {
      call.onAbort = () => this.hooks.cancel(q);
      signal.addEventListener("abort", call.onAbort, { once: true });
    }
    if (tracked) this.#tracked++;
    this.#calls.set(q, call);
    if (this.#calls.size === 1) this.hooks.busy(true);
    send(q);
    return promise;
  }

  /** Settles call `q` (a reply for a call no longer waiting is ignored). */
  settle(q: number, ok: boolean, value: unknown): void {
    const call = this.#calls.get(q);
    if (!call) return;
    this.#end(q, call);
    if (ok) call.resolve(value);
    else call.reject(call.signal?.aborted ? call.signal.reason : value);
  }

  /** Rejects every waiting call with `error`. */
  rejectAll(error: unknown): void {
    for (const q of [...this.#calls.keys()]) this.settle(q, false, error);
  }

  /** Resolves when no tracked call waits. */
  drained(): Promise<void> {
    if (this.#tracked === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #end(q: number, call: Waiting): void {
    if (call.onAbort) call.signal!.removeEventListener("abort", call.onAbort);
    this.#calls.delete(q);
    if (call.tracked && --this.#tracked === 0) for (const resolve of this.#drained.splice(0)) resolve();
    if (this.#calls.size === 0) this.hooks.busy(false);
  }
}
