/**
 * Every error class the library throws. Each has a stable `code` so that callers can branch on it
 * without parsing messages, and each message says what went wrong and how to fix it.
 *
 * Errors that cross a process boundary are encoded and rebuilt by `internal/wire/codec.ts`
 * (`encodeError`); the classes here are known there so that, for example, a `WorkerCrashedError` raised in a nested child
 * arrives as a `WorkerCrashedError`.
 */

/** Base class of every error raised by multiprocessing-ts itself. */
export class ProcessError extends Error {
  /** A stable machine-readable code, e.g. `"ERR_MP_TIMEOUT"`. */
  readonly code: string = "ERR_MP_PROCESS";
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperty(this, "name", { value: new.target.name, configurable: true, writable: true });
  }
}

/** An operation did not finish within its `timeout` (milliseconds). */
export class TimeoutError extends ProcessError {
  override readonly code = "ERR_MP_TIMEOUT";
}

/**
 * The worker running a task died before the task finished: killed by a signal, `process.exit()`,
 * out of memory, or an error thrown outside any task. Only the tasks that worker held get this error.
 */
export class WorkerCrashedError extends ProcessError {
  override readonly code = "ERR_MP_WORKER_CRASHED";
  /** The worker's exit code, or `null` when it died from a signal. */
  readonly exitCode: number | null;
  /** The signal that killed the worker, e.g. `"SIGKILL"`, or `null`. */
  readonly signal: string | null;
  constructor(message?: string, details: { exitCode?: number | null; signal?: string | null } = {}) {
    super(message);
    this.exitCode = details.exitCode ?? null;
    this.signal = details.signal ?? null;
  }
}

/** The pool can no longer run work, e.g. because its initializer failed. */
export class BrokenProcessPool extends ProcessError {
  override readonly code = "ERR_MP_BROKEN_POOL";
}

/**
 * A process or pool was started while a worker was still importing the module that defines its task:
 * the entry script is missing its `if (isMain(import.meta))` guard.
 */
export class BootstrapError extends ProcessError {
  override readonly code = "ERR_MP_BOOTSTRAP";
}

/** A value cannot be sent to another process; the message names its path, e.g. `args[1].onDone`. */
export class SerializationError extends ProcessError {
  override readonly code = "ERR_MP_SERIALIZATION";
}

/** An error raised in another process whose class cannot be rebuilt here; `name` keeps the original. */
export class RemoteError extends ProcessError {
  override readonly code = "ERR_MP_REMOTE";
}

/** A future or task was cancelled before it produced a result. */
export class CancelledError extends ProcessError {
  override readonly code = "ERR_MP_CANCELLED";
}

/** A non-blocking or timed `get()` found the queue empty. */
export class Empty extends ProcessError {
  override readonly code = "ERR_MP_EMPTY";
}

/** A non-blocking or timed `put()` found the queue full. */
export class Full extends ProcessError {
  override readonly code = "ERR_MP_FULL";
}

/** The other end of a connection was closed and nothing is left to read. */
export class EOFError extends ProcessError {
  override readonly code = "ERR_MP_EOF";
}

/** A barrier was broken (aborted, reset, or timed out) while a party waited on it. */
export class BrokenBarrierError extends ProcessError {
  override readonly code = "ERR_MP_BROKEN_BARRIER";
}

/** The object (a queue, a connection, a pool) was closed, so this operation cannot run. */
export class ClosedError extends ProcessError {
  override readonly code = "ERR_MP_CLOSED";
}

/** A connection's authentication key did not match. */
export class AuthenticationError extends ProcessError {
  override readonly code = "ERR_MP_AUTH";
}

/**
 * A shared memory segment with this name already exists (Python's `FileExistsError`): attach to it
 * instead of creating it, or choose another name.
 */
export class FileExistsError extends ProcessError {
  override readonly code = "ERR_MP_FILE_EXISTS";
}

/**
 * No shared memory segment has this name (Python's `FileNotFoundError`): it was never created, or it
 * was unlinked, which its creator does when it exits.
 */
export class FileNotFoundError extends ProcessError {
  override readonly code = "ERR_MP_FILE_NOT_FOUND";
}

/**
 * A cluster task was lost with its worker twice (the worker process or its machine died while
 * running it, or stopped renewing its lock): it ran once more after the first loss, as promised,
 * and is not tried a third time.
 */
export class WorkerLostError extends ProcessError {
  override readonly code = "ERR_MP_WORKER_LOST";
}

/**
 * A cluster pool lost its Redis server for longer than its `brokerTimeout` (or could not reach it
 * at all): the calls still waiting reject with this error instead of hanging.
 */
export class BrokerLostError extends ProcessError {
  override readonly code = "ERR_MP_BROKER_LOST";
}

/**
 * No cluster worker took a cluster pool's task within `workerWaitTimeout`: start workers with
 * `npx multiprocessing-ts worker --connect <url>` on the machines that should run the tasks.
 */
export class NoWorkersError extends ProcessError {
  override readonly code = "ERR_MP_NO_WORKERS";
}

/** Every library error class by name, for rebuilding errors that crossed a process boundary. */
export const libraryErrors: Record<string, new (message?: string) => Error> = {
  ProcessError,
  TimeoutError,
  WorkerCrashedError,
  BrokenProcessPool,
  BootstrapError,
  SerializationError,
  RemoteError,
  CancelledError,
  Empty,
  Full,
  EOFError,
  BrokenBarrierError,
  AuthenticationError,
  ClosedError,
  FileExistsError,
  FileNotFoundError,
  WorkerLostError,
  BrokerLostError,
  NoWorkersError,
};

/** Formats a value for an error message: short, and never throwing. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "function") return value.name ? `function ${value.name}` : "an anonymous function";
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const ctor = (value as object).constructor?.name;
  return ctor && ctor !== "Object" ? `a ${ctor}` : "an object";
}
