/**
 * A progress line on a terminal: the `{ progress }` option of map-like calls, and the command
 * line's demo and bench.
 *
 *   show(text) ─► at most one draw per 100 ms (the latest text wins) ─► "\r" + text over the line
 *   flush()    ─► a pending text drawn now (before blocking work)
 *   clear()    ─► the line blanked now (output can be printed), the next show() draws again
 *   end()      ─► the line blanked and nothing drawn after
 *
 * It draws only on a terminal: where the stream is a file or a pipe, `ProgressLine.open` gives
 * undefined and nothing at all is written. It uses no escape sequences (a line is blanked with
 * spaces), so it works on any terminal, `TERM=dumb` included.
 *
 * Own code rather than cli-progress: that package (6 packages, ~24 kB bundled, a runtime
 * dependency of every user of the library) redraws from a timer every 100 ms whether anything
 * changed or not, writes to stdout unless told otherwise, and has no form for an input of unknown
 * length; what is needed here is the throttle, the blanking and one formatter.
 */
import { describe } from "../errors.js";

/** The least time between two draws, in ms: about 10 redraws a second. */
export const REDRAW_MS = 100;

/** What a progress line writes to: a tty.WriteStream, or anything shaped like one. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** One line of a terminal redrawn in place, throttled; see the file's header. */
export class ProgressLine {
  readonly #stream: ProgressStream;
  #text = "";
  #drawn = 0; // columns of the text on the screen, 0 when the line is blank
  #last: number;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;

  /** The line on `stream` (default stderr), or undefined when `stream` is not a terminal. */
  static open(stream: ProgressStream = process.stderr): ProgressLine | undefined {
    return stream.isTTY === true ? new ProgressLine(stream) : undefined;
  }

  private constructor(stream: ProgressStream) {
    this.#stream = stream;
    // the first draw waits a full interval too: a call that ends sooner draws nothing at all
    this.#last = performance.now();
  }

  /** Shows `text`: now if the last draw is at least REDRAW_MS old, else when it is. */
  show(text: string): void {
    if (this.#ended) return;
    this.#text = text;
    this.#schedule();
  }

  /**
   * Draws the latest text now if it is not on the screen yet, however recent the last draw: for
   * a caller about to block the event loop (a pending redraw could not run until it is done).
   */
  flush(): void {
    if (this.#ended || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#draw();
  }

  /** Blanks the line now, so that other output can be printed; the next `show` draws again. */
  clear(): void {
    if (this.#drawn === 0) return;
    this.#stream.write(`\r${" ".repeat(this.#drawn)}\r`);
    this.#drawn = 0;
  }

  /** Blanks the line and stops: later calls draw nothing. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.clear();
  }

  #schedule(): void {
    if (this.#timer) return; // a draw is due already, and will show the latest text
    const wait = this.#last + REDRAW_MS - performance.now();
    if (wait <= 0) {
      this.#draw();
      return;
    }
    // unref'd: a pending redraw never keeps the program alive
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#schedule(); // a timer may fire a little early: it then waits the rest
    }, Math.ceil(wait)).unref();
  }

  #draw(): void {
    this.#last = performance.now(); // a show() from inside the write waits its interval too
    // one column short of the width: a line that fills the last column wraps on some terminals
    const width = Math.max(1, (this.#stream.columns || 80) - 1);
    const text = [...this.#text].slice(0, width).join("");
    const columns = [...text].length;
    this.#stream.write(`\r${text}${" ".repeat(Math.max(0, this.#drawn - columns))}`);
    this.#drawn = Math.max(columns, this.#drawn);
    // and the interval runs from the write's end: however long drawing took (a thread preempted
    // between the clock and the write), the next write starts a full interval after this one
    this.#last = performance.now();
  }
}

/** A progress bar: done/total, percent, rate and ETA; done and rate when the total is unknown. */
export class ProgressBar {
  readonly #line: ProgressLine;
  readonly #label: string;
  readonly #start = performance.now();
  readonly #columns: number;

  /** The bar on stderr, or undefined when stderr is not a terminal. */
  static open(label: string, stream: ProgressStream = process.stderr): ProgressBar | undefined {
    const line = ProgressLine.open(stream);
    return line && new ProgressBar(line, label, stream.columns || 80);
  }

  private constructor(line: ProgressLine, label: string, columns: number) {
    this.#line = line;
    this.#label = label;
    this.#columns = columns;
  }

  /** Shows `done` of `total` items (throttled). */
  update(done: number, total: number | undefined): void {
    this.#line.show(formatBar(this.#label, done, total, (performance.now() - this.#start) / 1000, this.#columns));
  }

  /** Blanks the bar for good. */
  end(): void {
    this.#line.end();
  }
}

/**
 * `label ██████░░░░░░ 412/1000  41% · 205/s · ETA 0:03`, or `label 412 done · 205/s` when the
 * total is unknown; the bar narrows to fit `columns`.
 */
export function formatBar(
  label: string,
  done: number,
  total: number | undefined,
  seconds: number,
  columns: number,
): string {
  const rate = seconds > 0 ? done / seconds : 0;
  const speed = `${compact(rate)}/s`;
  if (total === undefined) return `${label} ${done} done · ${speed}`;
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const eta = done >= total ? "0:00" : rate > 0 ? clock((total - done) / rate) : "--:--";
  const counts = `${done}/${total} ${String(Math.floor(fraction * 100)).padStart(3)}% · ${speed} · ETA ${eta}`;
  const room = columns - 1 - [...label].length - counts.length - 2;
  const width = Math.min(30, room);
  if (width < 5) return `${label} ${counts}`;
  const full = Math.round(fraction * width);
  return `${label} ${"█".repeat(full)}${"░".repeat(width - full)} ${counts}`;
}

/** 1234 → "1234", 12345 → "12.3k", 1234567 → "1.23M"; rates below 10 keep one decimal. */
function compact(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return x >= 10 ? x.toFixed(0) : x.toFixed(1);
}

/** Seconds as m:ss, or h:mm:ss from an hour on. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const mm = String(Math.floor(s / 60) % 60);
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** The `progress` option of a map-like call: `true`, `false`, a label, or undefined. */
export function checkProgress(value: unknown, name: string): asserts value is boolean | string | undefined {
  if (value === undefined || typeof value === "boolean" || typeof value === "string") return;
  throw new TypeError(`${name} must be true, false or a label string (got ${describe(value)})`);
}

/**
 * The bar a call's `{ progress }` asks for (labelled with the option's string, else `label`), or
 * undefined when it asks for none or stderr is not a terminal.
 */
export function progressFor(progress: boolean | string | undefined, label: string): ProgressBar | undefined {
  if (progress === undefined || progress === false) return undefined;
  return ProgressBar.open(typeof progress === "string" ? progress : label);
}
