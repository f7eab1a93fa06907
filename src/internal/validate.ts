/** Checks at the public edge: each throws a TypeError or RangeError that names the argument. */
import { describe } from "../errors.js";
import type { WaitOptions } from "../util.js";

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

/**
 * Every option name of an options type `T`, each set to `true`. An object literal of this type is
 * the one list of known names kept next to `T`: the compiler rejects it when it misses a name of
 * `T` or has one `T` lacks, so the list cannot drift from the type.
 */
export type OptionNames<T> = { readonly [K in keyof T]-?: true };

/** The known names of an options type, from its complete list (see `OptionNames`). */
export function optionNames<T>(names: OptionNames<T>): ReadonlySet<string> {
  return new Set(Object.keys(names));
}

/**
 * Refuses an option name `where` (e.g. "new Pool()") does not know, as Python refuses an unexpected
 * keyword argument: a TypeError naming it, the known name it is closest to (`max_workers` →
 * `maxWorkers`, `chunkSize` → `chunksize`, `proceses` → `processes`) and the known names.
 * It costs one loop over the given names, and nothing more unless one is unknown.
 */
export function checkOptionNames(options: object, known: ReadonlySet<string>, where: string): void {
  for (const name in options) if (!known.has(name)) throw unknownOption(name, known, where);
}

function unknownOption(name: string, known: ReadonlySet<string>, where: string): TypeError {
  const nearest = nearestName(name, known);
  return new TypeError(
    `${where} has no option '${name}'${nearest ? `: did you mean '${nearest}'?` : ""} ` +
      `(its options are ${[...known].map((k) => `'${k}'`).join(", ")})`,
  );
}

/** The known name spelled like `name` up to case and underscores, or within two edits of it. */
function nearestName(name: string, known: ReadonlySet<string>): string | undefined {
  const plain = (s: string) => s.replaceAll("_", "").toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(plain(name), plain(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

const waitOptionNames = optionNames<WaitOptions>({ block: true, timeout: true, signal: true });

/** Checks `{ block, timeout, signal }` of the call `where` and fills in `block: true`. */
export function checkWaitOptions(options: WaitOptions, where = "this call"): WaitOptions & { block: boolean } {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object such as { timeout: 1000 } (got ${typeof options})`);
  }
  checkOptionNames(options, waitOptionNames, where);
  if (options.block !== undefined && typeof options.block !== "boolean") {
    throw new TypeError(`options.block must be a boolean (got ${typeof options.block})`);
  }
  checkTimeout(options.timeout, "options.timeout");
  checkSignal(options.signal, "options.signal");
  return { block: options.block ?? true, timeout: options.timeout, signal: options.signal };
}
