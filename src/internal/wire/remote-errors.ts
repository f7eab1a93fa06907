/**
 * Errors rebuilt from another process: made as native errors of their own class without running its
 * constructor, and marked so that the first public promise to reject with one adds the frames of the
 * code that waited for it here (`withCallerFrames`). The decoder in codec.ts makes them.
 */
import { libraryRoot } from "../paths.js";

/** The built-in error constructors, by prototype: every rebuilt error is made by one of them. */
const nativeConstructors = new Map<object, ErrorConstructor>(
  [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError].map((c) => [
    c.prototype,
    c as ErrorConstructor,
  ]),
);

/**
 * A native error (what `util.types.isNativeError` and structured clone recognise) of class `cls`,
 * without running `cls`'s constructor, whose parameters and side effects are its own: the nearest
 * built-in constructor in its chain makes it, and its prototype becomes `cls.prototype`.
 */
export function nativeError(cls: new (message?: string) => Error, message: string): Error {
  let make: ErrorConstructor | undefined;
  for (let p = cls.prototype; p && !make; p = Object.getPrototypeOf(p)) make = nativeConstructors.get(p);
  make ??= Error;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0; // the stack that matters is the sender's, set next
  let error: Error;
  try {
    error = (make as unknown) === AggregateError ? new AggregateError([], message) : new make(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (Object.getPrototypeOf(error) !== cls.prototype) Object.setPrototypeOf(error, cls.prototype);
  return error;
}

/** Marks an error rebuilt from another process, until `withCallerFrames` adds the local frames. */
export const fromElsewhere: unique symbol = Symbol("multiprocessing-ts.fromElsewhere");

/**
 * Adds to an error that came from another process the frames of the code waiting for it here,
 * below the remote ones, the way Python chains a remote traceback with the local one; returns the
 * error. Called where a public promise rejects with it, inside an async function or a rejection
 * handler, so that V8's async stack trace reaches the caller's `await`. Once per error.
 */
export function withCallerFrames(error: unknown): unknown {
  if (typeof error !== "object" || error === null || !(fromElsewhere in error)) return error;
  delete (error as { [fromElsewhere]?: boolean })[fromElsewhere];
  const here: { stack?: string } = {};
  Error.captureStackTrace(here, withCallerFrames);
  const frames = (here.stack ?? "")
    .split("\n")
    .slice(1)
    .filter(
      (line) => !line.includes(libraryRoot) && !line.includes("(node:internal/") && !/at node:internal\//.test(line),
    );
  const e = error as unknown as Error;
  if (frames.length > 0 && typeof e.stack === "string") {
    Object.defineProperty(e, "stack", {
      value: `${e.stack}\n    --- where the call was made ---\n${frames.join("\n")}`,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  return error;
}

/** A rejection handler that rethrows `error` with the caller's frames (see `withCallerFrames`). */
export function rethrowWithCallerFrames(error: unknown): never {
  throw withCallerFrames(error);
}
