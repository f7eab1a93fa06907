/** Checks at the public edge: each throws a TypeError or RangeError that names the argument. */
import { describe } from "../errors.js";

/** A timeout in milliseconds: undefined (wait forever), or a finite number >= 0. */
export function checkTimeout(value: unknown, name: string): asserts value is number | undefined {
  if (value === undefined || value === null) return;
  if (typeof value !== "number")
    throw new TypeError(`${name} must be a number of milliseconds (got ${describe(value)})`);
  if (Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a number of milliseconds >= 0 (got ${value})`);
  }
}

/** A whole number >= `min`. */
export function checkInteger(value: unknown, name: string, min: number): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer (got ${describe(value)})`);
  }
  if (value < min) throw new RangeError(`${name} must be at least ${min} (got ${value})`);
}

/** An AbortSignal or undefined. */
export function checkSignal(value: unknown, name: string): asserts value is AbortSignal | undefined {
  if (value === undefined) return;
  if (!(value instanceof AbortSignal)) throw new TypeError(`${name} must be an AbortSignal (got ${describe(value)})`);
}

/** A function or undefined. */
export function checkFunction(value: unknown, name: string): asserts value is Function | undefined {
  if (value === undefined) return;
  if (typeof value !== "function") throw new TypeError(`${name} must be a function (got ${describe(value)})`);
}

/** Options of every blocking operation: `{ block, timeout, signal }`. */
export interface WaitOptions {
  /** Wait (default true). With `false`, `timeout` is ignored. */
  block?: boolean;
  /** Give up after this many milliseconds. */
  timeout?: number;
  /** Give up when this signal aborts. */
  signal?: AbortSignal;
}

/** Checks `{ block, timeout, signal }` and fills in `block: true`. */
export function checkWaitOptions(options: WaitOptions): WaitOptions & { block: boolean } {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object such as { timeout: 1000 } (got ${typeof options})`);
  }
  if (options.block !== undefined && typeof options.block !== "boolean") {
    throw new TypeError(`options.block must be a boolean (got ${typeof options.block})`);
  }
  checkTimeout(options.timeout, "options.timeout");
  checkSignal(options.signal, "options.signal");
  return { block: options.block ?? true, timeout: options.timeout, signal: options.signal };
}
