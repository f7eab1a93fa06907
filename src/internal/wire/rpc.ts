/**
 * The server side of a request/reply channel, the twin of calls.ts (the client side): each request
 * runs with an AbortSignal that the caller's cancel, or the channel's close, aborts; its outcome,
 * returned or thrown, at once or as a promise, goes back as exactly one reply. The server encodes
 * the reply for its own wire (its transport, its keys).
 *
 *   request q ──► run(call) ──► value | promise | throw ──► reply(q, ok, value)
 *   cancel q  ──► abort q's signal ("cancelled by the caller")
 *   close     ──► abort every signal ("the caller went away")
 */
import { ProcessError } from "../../errors.js";

/**
 * One running request. Its AbortSignal is made when first read: most requests finish at once and
 * never look at it, and an AbortController costs more than the rest of a small request's handling.
 */
export class RunningCall {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;

  /** Aborted when the caller cancels the request or goes away. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts the signal (now, or as it is made). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** The requests of one channel that are running now, by number. */
export class ServedCalls {
  readonly #running = new Map<number, RunningCall>();

  /** Runs request `q` with `run`, then sends its outcome with `reply` (ok and the value, or the error). */
  run(q: number, run: (call: RunningCall) => unknown, reply: (ok: boolean, value: unknown) => void): void {
    const call = new RunningCall();
    let result: unknown;
    try {
      result = run(call);
    } catch (error) {
      reply(false, error);
      return;
    }
    if (!(result instanceof Promise)) {
      reply(true, result);
      return;
    }
    this.#running.set(q, call);
    result.then(
      (value) => {
        this.#running.delete(q);
        reply(true, value);
      },
      (error) => {
        this.#running.delete(q);
        reply(false, error);
      },
    );
  }

  /** The caller gave up request `q`. */
  cancel(q: number): void {
    this.#running.get(q)?.abort(new ProcessError("cancelled by the caller"));
  }

  /** The channel closed: every running request is aborted. */
  closeAll(): void {
    for (const call of this.#running.values()) call.abort(new ProcessError("the caller went away"));
    this.#running.clear();
  }
}
