/**
 * The one way a library object is rebuilt on arrival: its rebuilder (codec.ts's
 * `registerRebuilder`) makes what arrived and calls the public constructor inside
 * `with(made, ...)`; the constructor, finding `take()` set, uses it instead of making a new
 * object. Public constructors thus take public options only.
 */
export class Arrival<T> {
  #made: T | undefined;

  /** Runs `construct` with `made` waiting for the constructor it calls. */
  with<R>(made: T, construct: () => R): R {
    this.#made = made;
    try {
      return construct();
    } finally {
      this.#made = undefined;
    }
  }

  /** In a constructor: what arrived (once, so that objects it makes in turn are new), or undefined. */
  take(): T | undefined {
    const made = this.#made;
    this.#made = undefined;
    return made;
  }
}
