/**
 * The worker command's status line on a terminal: jobs done (and failed), running, and the rate
 * over the last few seconds, on stderr, redrawn through a ProgressLine (at most ~10 times a second,
 * and once a second while idle, so that the rate falls to 0). Where stderr is not a terminal
 * nothing at all is written: `WorkerStatus.open` gives undefined.
 *
 *   job starts / ends ─► counts ─► show(text) ─► ProgressLine (throttled "\r" redraw)
 *   before a line of output: clear() ─► print ─► the next show() draws again
 */
import { type ProgressStream, ProgressLine } from "../progress.js";

/** How far back the rate looks, in ms. */
const RATE_WINDOW_MS = 5000;

/** The worker command's status line; see the file's header. */
export class WorkerStatus {
  readonly #line: ProgressLine;
  #done = 0;
  #failed = 0;
  #running = 0;
  /** (time, done) samples of the last RATE_WINDOW_MS, oldest first, about one per 100 ms. */
  readonly #samples: { t: number; done: number }[] = [];
  readonly #timer: NodeJS.Timeout;

  /** The status line on `stream` (default stderr), or undefined when `stream` is not a terminal. */
  static open(stream: ProgressStream = process.stderr): WorkerStatus | undefined {
    const line = ProgressLine.open(stream);
    return line && new WorkerStatus(line);
  }

  private constructor(line: ProgressLine) {
    this.#line = line;
    this.#samples.push({ t: performance.now(), done: 0 });
    // unref'd: the line never keeps the worker alive
    this.#timer = setInterval(() => this.#show(), 1000).unref();
  }

  /** A job started running here. */
  started(): void {
    this.#running++;
    this.#show();
  }

  /** A job ended; `ok` is false when it ended in an error (the task threw, or its local child died). */
  finished(ok: boolean): void {
    this.#running--;
    this.#done++;
    if (!ok) this.#failed++;
    this.#show();
  }

  /** Blanks the line so that a line of output can be printed; the next change draws it again. */
  clear(): void {
    this.#line.clear();
  }

  /** Blanks the line for good. */
  end(): void {
    clearInterval(this.#timer);
    this.#line.end();
  }

  #show(): void {
    const now = performance.now();
    const samples = this.#samples;
    if (now - samples.at(-1)!.t >= 100) samples.push({ t: now, done: this.#done });
    while (samples.length > 1 && now - samples[0]!.t > RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const seconds = (now - first.t) / 1000;
    const rate = seconds > 0 ? (this.#done - first.done) / seconds : 0;
    const failed = this.#failed > 0 ? ` (${this.#failed} failed)` : "";
    this.#line.show(
      `multiprocessing-ts worker: ${this.#done} done${failed} · ${this.#running} running · ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)}/s`,
    );
  }
}
