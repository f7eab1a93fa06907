/**
 * The pool engine seam: what `Pool`, `ProcessPoolExecutor` and the streaming calls need from
 * whatever runs their tasks, and what a start method says it can do.
 *
 *   Pool / Executor ── resolveMethod(options) ──► start-method registry (backends/registry.ts)
 *                                                    │ engine(options): PoolEngine
 *                                                    │ capabilities: process? primitives? memory?
 *                      submit(job) ─► PoolEngine ─► job.settle(outcome)
 *
 * `WorkerSet` (local child processes or worker threads) is the engine of "spawn" and "thread". The
 * interface assumes no slot with a pid per worker, no ordered channel and nothing that can be
 * killed: an engine whose jobs sit in a broker and are pulled by remote workers implements it as
 * honestly as a local one. Per-worker details (pid, state) are reported through `stats()` only.
 */
import type { SharedMemoryKind } from "./backend.js";

/** The outcome of one job, handed to `Job.settle`. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** One unit of work: one call (`apply`, `submit`) or one chunk of a map-like call. */
export interface Job {
  fn: Function;
  /** "call": `fn(...args)`; "map": `fn(item)` per item of `args`; "star": `fn(...tuple)` per tuple. */
  mode: "call" | "map" | "star";
  /** Arguments: for "call" the argument list, else the chunk of items. */
  args: unknown[];
  /** Called once with the outcome (for "map" and "star": the array of the chunk's values). */
  settle(outcome: Outcome): void;
  /** Set by `cancel()`: the job is dropped if queued and its outcome ignored if running. */
  cancelled?: boolean;
  /** The arguments as the engine's `encodeArgs` returned them at submit time (so errors surface there). */
  encoded?: { value: unknown; changed: boolean };
  /** How many times the job was lost with a crashed worker and run again. */
  retried?: number;
  /** A signal or timeout may stop it while it runs: it is never sent together with other jobs. */
  interruptible?: boolean;
}

/** What Pool and Executor ask an engine for, already validated. */
export interface EngineOptions {
  /** How many tasks may run at once (workers). */
  size: number;
  initializer: Function | undefined;
  initargs: unknown[];
  /** Replace a worker after it ran this many tasks (0: never). */
  maxTasksPerChild: number;
  /** Run a job again, up to this many times, when the worker running it is lost (default 0). */
  retries?: number;
  /** Heap limit of each worker, in MiB. */
  maxHeapMb?: number;
  /** Start all workers at once (Pool) or as work arrives (executor). */
  eager: boolean;
  /** Name prefix of the workers, e.g. "PoolWorker". */
  name: string;
  /** The `cluster` option as given (checked by the cluster engine; the environment's when undefined). */
  cluster?: unknown;
}

/** The engine's lifecycle: accepting work, draining after `close()`, stopped, or unable to run work. */
export type EngineState = "running" | "closing" | "terminated" | "broken";

/** What one worker of a pool is doing. */
export type WorkerState = "starting" | "idle" | "busy" | "stopping";

/** One worker, as `stats()` reports it. */
export interface WorkerStats {
  /** Its name, e.g. `PoolWorker-3` (a replacement gets the next number). */
  readonly name: string;
  /** Its OS process id (for the "thread" method: this process's pid; for a cluster: the worker command's). */
  readonly pid: number | undefined;
  /** The machine it runs on: set for a cluster's worker commands only. */
  readonly host?: string;
  /** `"starting"` until its initializer is done, then `"busy"` while it holds a task, else `"idle"`; `"stopping"` once told to exit. */
  readonly state: WorkerState;
  /** Tasks it finished, with a value or an error. */
  readonly completed: number;
}

/**
 * A snapshot of a pool's work. A task is one `apply`/`submit` call or one chunk of a map-like call.
 */
export interface PoolStats {
  /** Tasks submitted and not started yet: waiting in the queue, or sent ahead to a busy worker. */
  readonly queued: number;
  /** Tasks a worker has started and not finished. */
  readonly running: number;
  /** Tasks finished with a value. */
  readonly completed: number;
  /** Tasks that a worker ran and that ended in an error: the function threw, or its worker died running it. */
  readonly failed: number;
  /**
   * The share of the pool's capacity spent on tasks since the pool was created, from 0 to 1: the
   * time each worker held a started task, summed over the workers (finished tasks and the ones
   * running now), divided by `size` × the wall time since the pool was created. A pool whose workers
   * are all busy all the time has 1; an executor that has not started its workers yet has 0.
   */
  readonly utilization: number;
  /** The live workers, oldest first; on a cluster pool, the worker commands whose heartbeat is live. */
  readonly workers: readonly WorkerStats[];
}

/**
 * What `Pool`, `ProcessPoolExecutor` and `lazyResults` use to run tasks. Every member is called by
 * the parent's main code only; nothing here blocks.
 */
export interface PoolEngine {
  /** `"running"` until `close()` (then `"closing"`), `terminate()` or a failure to start any worker (`"broken"`). */
  readonly state: EngineState;
  /** Checks that `fn` can be sent to the workers; throws a clear error at once otherwise. */
  prepare(fn: Function, what: string): void;
  /** Encodes arguments for the workers now, so a SerializationError naming `path` reaches the caller. */
  encodeArgs(args: unknown[], path: string): { value: unknown; changed: boolean };
  /**
   * Queues a job; its `settle` is called exactly once, later, unless the job is cancelled. Throws
   * (BrokenProcessPool, ProcessError) when the engine no longer accepts work.
   */
  submit(job: Job): void;
  /**
   * Gives up on a job: it is not started if it has not been, and its outcome is ignored. With
   * `interrupt`, a running job is stopped too where the engine can (a local worker is replaced);
   * where it cannot, the job runs on and its outcome is ignored. `settle` is not called.
   */
  cancel(job: Job, interrupt?: boolean): void;
  /** Cancels a job only if no worker has started it (Python's `Future.cancel`): true if it will never run. */
  withdraw(job: Job): boolean;
  /** True once a worker has started the job and it has not finished. */
  started(job: Job): boolean;
  /**
   * True once the job is handed to a worker, started or not (what Python's call queue holds):
   * `shutdown({ cancelFutures })` leaves such a job to run. An engine that hands jobs over only as
   * they start answers as `started` does.
   */
  assigned(job: Job): boolean;
  /** Stops accepting work; the workers finish the submitted work, then exit. */
  close(): void;
  /**
   * Stops now: every queued and running job settles with `reason`. `how` says how hard: `"kill"`
   * (default) cannot be caught, `"terminate"` asks politely; an engine that cannot tell does the same.
   */
  terminate(reason: Error, how?: "terminate" | "kill"): void;
  /** Lets the program exit without waiting for the submitted work (its workers end with the program). */
  detach(): void;
  /** Resolves once every worker has exited, after `close()` or `terminate()`; never rejects. */
  join(): Promise<void>;
  /** A snapshot of the queue, the counters and the workers, computed now. */
  stats(): PoolStats;
  /**
   * `map`'s items per task when the caller gives no `chunksize`, for `length` items; an engine
   * without it gets the local rule (about four chunks per worker).
   */
  defaultChunksize?(length: number): number;
}

/** What a start method can do besides pools: the registry's record, asked by the code that needs it. */
export interface Capabilities {
  /** It runs a `Process` (and so a Manager's server process). */
  readonly process: boolean;
  /** It offers Queue, Lock and the other synchronization primitives, Value and SharedArray. */
  readonly primitives: boolean;
  /** The memory its children map with their parent: SharedArrayBuffers, POSIX segments, or none. */
  readonly sharedMemory: SharedMemoryKind | "none";
}
