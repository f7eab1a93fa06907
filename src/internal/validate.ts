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
