/**
 * The bench's progress line: on a terminal, stderr's last line says how long the bench has run,
 * which suite and row it is on (`bench 1:42 · calls (1/10) · piscina`); the rows and tables go to
 * stdout as before. Where stderr is a file or a pipe nothing of it is written, so a saved or piped
 * run holds the figures alone.
 */
import { ProgressLine, clock } from "../src/tools.ts";

export class BenchStatus {
  readonly #line = ProgressLine.open();
  readonly #start = performance.now();
  readonly #suites: readonly string[];
  readonly #ticker: NodeJS.Timeout | undefined;
  #suite = "";
  #row = "";

  /** `suites`: the suites this run will go through, in order. */
  constructor(suites: readonly string[]) {
    this.#suites = suites;
    // the elapsed time moves on while one row runs for long; unref'd, it never keeps the bench alive
    if (this.#line) this.#ticker = setInterval(() => this.#show(), 1000).unref();
  }

  /** The bench is now on `row` (what it measures) of `suite`. */
  at(suite: string, row = ""): void {
    this.#suite = suite;
    this.#row = row;
    this.#show();
    // what follows may block the event loop for long (CPython runs synchronously): draw it now
    this.#line?.flush();
  }

  /** Prints `text` on stdout, the progress line blanked around it. */
  print(text: string): void {
    this.#line?.clear();
    console.log(text);
    this.#show();
  }

  /** Blanks the line for good. */
  end(): void {
    clearInterval(this.#ticker);
    this.#line?.end();
  }

  #show(): void {
    if (!this.#line || !this.#suite) return;
    const at = this.#suites.indexOf(this.#suite);
    const of = at >= 0 ? ` (${at + 1}/${this.#suites.length})` : "";
    const elapsed = clock((performance.now() - this.#start) / 1000);
    this.#line.show(`bench ${elapsed} · ${this.#suite}${of}${this.#row ? ` · ${this.#row}` : ""}`);
  }
}
