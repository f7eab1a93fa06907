/**
 * The server side of a request/reply channel, the twin of calls.ts (the client side): each request
 * runs with an AbortSignal that the caller's cancel, or the channel's close, aborts; its outcome,
 * returned or thrown, at once or as a promise, goes back as exactly one reply. The server encodes
 * the reply for its own wire (its transport, its keys).
 *
 *   request q ──► run(signal) ──► value | promise | throw ──► reply(q, ok, value)
 *   cancel q  ──► abort q's signal ("cancelled by the caller")
 *   close     ──► abort every signal ("the caller went away")
 */
import { ProcessError } from "../../errors.js";

/** The requests of one channel that are running now, by number. */
export class ServedCalls {
  readonly #running = new Map<number, AbortController>();

  /** Runs request `q` with `run`, then sends its outcome with `reply` (ok and the value, or the error). */
  run(q: number, run: (signal: AbortSignal) => unknown, reply: (ok: boolean, value: unknown) => void): void {
    const controller = new AbortController();
    this.#running.set(q, controller);
    const settle = (ok: boolean, value: unknown) => {
      this.#running.delete(q);
      reply(ok, value);
    };
    let result: unknown;
    try {
      result = run(controller.signal);
    } catch (error) {
      settle(false, error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value) => settle(true, value),
        (error) => settle(false, error),
      );
    } else settle(true, result);
  }

  /** The caller gave up request `q`. */
  cancel(q: number): void {
    this.#running.get(q)?.abort(new ProcessError("cancelled by the caller"));
  }

  /** The channel closed: every running request is aborted. */
  closeAll(): void {
    for (const controller of this.#running.values()) controller.abort(new ProcessError("the caller went away"));
    this.#running.clear();
  }
}
