/**
 * `ProcessPoolExecutor`, `Future`, `wait` and `asCompleted`: Python's `concurrent.futures` on the
 * start method's pool engine (internal/pool/engine.ts). Workers start on demand, idle ones first.
 *
 * Unlike Python's, a worker that dies does not break the executor: only the future it was running
 * fails (WorkerCrashedError), and the executor goes on. A failing initializer does break it
 * (BrokenProcessPool), since no worker could ever run a task.
 */
import { inspect } from "node:util";
import { CancelledError, ProcessError, TimeoutError } from "./errors.js";
import { withCallerFrames } from "./internal/wire/remote-errors.js";
import type { ClusterOption } from "./internal/cluster/target.js";
import { resolveMethod } from "./backends/registry.js";
import type { StartMethod } from "./internal/runtime.js";
import { checkProgress } from "./internal/progress.js";
import { type Input, lazyResults, watch } from "./internal/pool/streaming.js";
import {
  checkFunction,
  checkInteger,
  checkOptionNames,
  checkSignal,
  checkTimeout,
  optionNames,
} from "./internal/validate.js";
import type { Job, PoolEngine, PoolStats } from "./internal/pool/engine.js";
import { engineFor } from "./backends/engines.js";
import { checkMayStartChildren } from "./process.js";
import { cpuCount } from "./util.js";

/** Options of `new ProcessPoolExecutor(...)`. */
export interface ExecutorOptions {
  /** At most this many workers (default `cpuCount()`), started as work arrives. */
  maxWorkers?: number;
  /** Runs once in every worker before its first task. */
  initializer?: (...args: any[]) => unknown;
  /** Arguments for `initializer` (default none). */
  initargs?: unknown[];
  /** Replace a worker after it ran this many tasks (default: never). */
  maxTasksPerChild?: number;
  /** Run a call again, up to this many times, when the worker running it crashes (default 0). */
  retries?: number;
  /** Heap limit of each worker in MiB: a worker that exceeds it dies (its call gets WorkerCrashedError). */
  maxHeapMb?: number;
  /**
   * Run the tasks on a cluster instead of this machine: a Redis URL
   * (`redis://[:password@]host:port[/db]`, `rediss://…` for TLS, `unix:///path/redis.sock`) or
   * `{ url, queue, brokerTimeout, workerWaitTimeout }`. Workers started with
   * `npx multiprocessing-ts worker --connect <url>` on any machine run them; the size is then the
   * most tasks this pool keeps in flight, not a number of machines. Without it, and without
   * `context`, the `MULTIPROCESSING_TS_CLUSTER` environment variable chooses a cluster. Task
   * functions must be exported from a module of the project (or be self-contained), and arguments
   * may not hold objects that exist only on this machine (queues, locks, shared memory).
   */
  cluster?: ClusterOption;
  /** The start method: `"spawn"` (default) or `"thread"`. */
  context?:
    | StartMethod
    | {
        /** The start method, as a {@link Context} carries it. */
        readonly startMethod: StartMethod;
      };
}

const executorOptionNames = optionNames<ExecutorOptions>({
  maxWorkers: true,
  initializer: true,
  initargs: true,
  maxTasksPerChild: true,
  retries: true,
  maxHeapMb: true,
  context: true,
  cluster: true,
});

type FutureState = "PENDING" | "RUNNING" | "CANCELLED" | "FINISHED";

/** Options of `executor.submitWith(...)`. */
export interface SubmitOptions {
  /** Fails the future with TimeoutError after this many ms, stopping the call like `signal`. */
  timeout?: number;
  /**
   * Fails the future with the signal's reason when it aborts: a call no worker has started is
   * dropped; a running one has its worker stopped and replaced.
   */
  signal?: AbortSignal;
}

const NO_OPTIONS: SubmitOptions = {};
const submitOptionNames = optionNames<SubmitOptions>({ timeout: true, signal: true });

/**
 * The eventual result of a submitted call. Deliberately not a thenable (so `asCompleted` can yield
 * futures): read it with `await future.result()`.
 */
export class Future<R> {
  #state: FutureState = "PENDING";
  #value: R | undefined;
  #error: unknown;
  #failed = false;
  #callbacks: ((future: Future<R>) => void)[] = [];
  #settled: Promise<void>;
  #resolveSettled!: () => void;
  /** @internal Cancels the call if no worker has started it; false if one has. */
  _withdraw: (() => boolean) | undefined;
  /** @internal True once a worker has started the call. */
  _started: (() => boolean) | undefined;
  /** @internal True once the call is handed to a worker, started or not. */
  _assigned: (() => boolean) | undefined;

  /** @internal */
  constructor() {
    this.#settled = new Promise((resolve) => (this.#resolveSettled = resolve));
  }

  /**
   * The call's value; rejects with its error, CancelledError if it was cancelled, or TimeoutError
   * if it is not done within `timeout` ms (the call itself goes on).
   */
  async result(timeout?: number): Promise<R> {
    await this.#wait(timeout);
    if (this.#state === "CANCELLED") throw new CancelledError("the future was cancelled");
    if (this.#failed) throw withCallerFrames(this.#error);
    return this.#value as R;
  }

  /** The call's error, or undefined if it succeeded; rejects like `result()` on cancel or timeout. */
  async exception(timeout?: number): Promise<unknown> {
    await this.#wait(timeout);
    if (this.#state === "CANCELLED") throw new CancelledError("the future was cancelled");
    return this.#failed ? withCallerFrames(this.#error) : undefined;
  }

  /**
   * Cancels a call that no worker has started (one queued, or sent ahead to a busy worker); false if
   * it is running or done. To stop a running call, submit it with `submitWith({ timeout, signal })`.
   */
  cancel(): boolean {
    if (this.#state === "CANCELLED") return true;
    if (this.#state !== "PENDING") return false;
    if (this._withdraw && !this._withdraw()) {
      this.#state = "RUNNING";
      return false;
    }
    this.#state = "CANCELLED";
    this.#finish();
    return true;
  }

  /** True once `cancel()` succeeded. */
  cancelled(): boolean {
    return this.#state === "CANCELLED";
  }

  /** True while a worker runs the call (a call waiting for a worker is not running). */
  running(): boolean {
    if (this.#state === "PENDING" && this._started?.()) this.#state = "RUNNING";
    return this.#state === "RUNNING";
  }

  /** True once finished or cancelled. */
  done(): boolean {
    return this.#state === "CANCELLED" || this.#state === "FINISHED";
  }

  /** Calls `fn(this)` when the future is done (at once if it already is). Errors in `fn` are logged. */
  addDoneCallback(fn: (future: Future<R>) => void): void {
    checkFunction(fn, "fn");
    if (this.done()) this.#call(fn);
    else this.#callbacks.push(fn);
  }

  /** @internal */
  _settle(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void {
    if (this.done()) return;
    this.#state = "FINISHED";
    if (outcome.ok) this.#value = outcome.value as R;
    else {
      this.#failed = true;
      this.#error = outcome.error;
    }
    this.#finish();
  }

  /** @internal Resolves when done, for `wait` and `asCompleted`. */
  _settled(): Promise<void> {
    return this.#settled;
  }

  #finish(): void {
    this.#resolveSettled();
    for (const fn of this.#callbacks.splice(0)) this.#call(fn);
  }

  #call(fn: (future: Future<R>) => void): void {
    try {
      fn(this);
    } catch (error) {
      process.stderr.write(
        `multiprocessing-ts: exception calling callback for a future: ${(error as Error)?.stack ?? error}\n`,
      );
    }
  }

  async #wait(timeout?: number): Promise<void> {
    checkTimeout(timeout, "timeout");
    if (this.done()) return;
    if (timeout === undefined) return this.#settled;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#settled, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
    if (!this.done()) throw new TimeoutError(`the future was not done within ${timeout} ms`);
  }

  /** Shows the state (PENDING, RUNNING, CANCELLED, FINISHED) and whether it raised. */
  [inspect.custom](): string {
    this.running(); // brings the state up to date
    return `Future { state: '${this.#state}'${this.#failed ? ", raised" : ""} }`;
  }
}

/** The result of `executor.map(...)`: await it for the array, or iterate it to stream in order. */
export interface MapResult<R> extends AsyncIterable<R>, PromiseLike<R[]> {}

/**
 * A pool of workers that runs submitted calls and hands back `Future`s, like Python's
 * `concurrent.futures.ProcessPoolExecutor`. Leave it with `await using` (waits for the work).
 */
export class ProcessPoolExecutor {
  readonly #workers: PoolEngine;
  readonly #method: StartMethod | "cluster";
  readonly #size: number;
  readonly #pending = new Set<Future<unknown>>();
  #shutdown = false;

  constructor(options: ExecutorOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`executor options must be an object such as { maxWorkers: 4 } (got ${typeof options})`);
    }
    checkOptionNames(options, executorOptionNames, "new ProcessPoolExecutor()");
    const maxWorkers = options.maxWorkers ?? cpuCount();
    checkInteger(maxWorkers, "options.maxWorkers", 1);
    if (options.maxTasksPerChild !== undefined) checkInteger(options.maxTasksPerChild, "options.maxTasksPerChild", 1);
    if (options.retries !== undefined) checkInteger(options.retries, "options.retries", 0);
    if (options.maxHeapMb !== undefined) checkInteger(options.maxHeapMb, "options.maxHeapMb", 1);
    checkFunction(options.initializer, "options.initializer");
    if (options.initargs !== undefined && !Array.isArray(options.initargs)) {
      throw new TypeError(`options.initargs must be an array (got ${typeof options.initargs})`);
    }
    this.#method = resolveMethod(options);
    checkMayStartChildren();
    this.#size = maxWorkers;
    this.#workers = engineFor(this.#method, {
      size: maxWorkers,
      initializer: options.initializer,
      initargs: options.initargs ?? [],
      maxTasksPerChild: options.maxTasksPerChild ?? 0,
      retries: options.retries ?? 0,
      maxHeapMb: options.maxHeapMb,
      eager: false,
      name: "ExecutorWorker",
      cluster: options.cluster,
    });
  }

  /** The start method of this executor. */
  get startMethod(): StartMethod | "cluster" {
    return this.#method;
  }

  /**
   * Schedules `fn(...args)` and returns its Future. Throws after `shutdown()`.
   * @typeParam F - the type of `fn`, which types `args` and the Future's result.
   */
  submit<F extends (...args: any[]) => unknown>(fn: F, ...args: Parameters<F>): Future<Awaited<ReturnType<F>>> {
    return this.#submit(NO_OPTIONS, fn, args);
  }

  /**
   * `submit` with a way out of a call that hangs: after `timeout` ms, or when `signal` aborts, the
   * future fails (TimeoutError, or the signal's reason); a call no worker has started is dropped,
   * and a running one has its worker stopped and replaced (JavaScript cannot interrupt a running
   * function otherwise). Python's `submit(fn, *args)` has no such options, hence the separate name.
   *
   * ```ts
   * const f = ex.submitWith({ timeout: 5000 }, compute, 42);
   * ```
   * @typeParam F - the type of `fn`, which types `args` and the Future's result.
   */
  submitWith<F extends (...args: any[]) => unknown>(
    options: SubmitOptions,
    fn: F,
    ...args: Parameters<F>
  ): Future<Awaited<ReturnType<F>>> {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `options must be an object such as { timeout: 5000 } (got ${options === null ? "null" : typeof options})`,
      );
    }
    checkOptionNames(options, submitOptionNames, "executor.submitWith()");
    checkSignal(options.signal, "options.signal");
    checkTimeout(options.timeout, "options.timeout");
    return this.#submit(options, fn, args);
  }

  #submit<F extends (...args: any[]) => unknown>(
    options: SubmitOptions,
    fn: F,
    args: Parameters<F>,
  ): Future<Awaited<ReturnType<F>>> {
    if (this.#shutdown) throw new ProcessError("cannot schedule new futures after shutdown");
    checkFunction(fn, "fn");
    const future = new Future<Awaited<ReturnType<F>>>();
    const pending = this.#pending as Set<Future<Awaited<ReturnType<F>>>>;
    const workers = this.#workers;
    let stop: (() => void) | undefined;
    // a method, not an arrow: a bundle that keeps function names renames every arrow it creates
    const job: Job = {
      fn,
      mode: "call",
      args,
      encoded: workers.encodeArgs(args, "args"),
      interruptible: options.signal !== undefined || options.timeout !== undefined,
      settle(outcome) {
        stop?.();
        pending.delete(future);
        future._settle(outcome);
      },
    };
    future._withdraw = () => {
      if (!workers.withdraw(job)) return false;
      stop?.();
      pending.delete(future);
      return true;
    };
    future._started = () => workers.started(job);
    future._assigned = () => workers.assigned(job);
    workers.submit(job);
    pending.add(future);
    if (options.signal !== undefined || options.timeout !== undefined) {
      stop = watch(options, (reason) => {
        stop?.();
        workers.cancel(job, true);
        pending.delete(future);
        future._settle({ ok: false, error: reason });
      });
    }
    return future;
  }

  /**
   * `fn(item)` for every item, results in input order. Await it for the array, or iterate it to
   * stream results while the input is pulled lazily. `timeout` bounds the whole call;
   * `onProgress` and `progress` report progress as for `Pool.map` (see `MapOptions`).
   */
  map<T, R>(
    fn: (item: T) => R,
    items: Input<T>,
    options: {
      chunksize?: number;
      timeout?: number;
      signal?: AbortSignal;
      onProgress?: (done: number, total: number | undefined) => void;
      progress?: boolean | string;
    } = {},
  ): MapResult<Awaited<R>> {
    if (this.#shutdown) throw new ProcessError("cannot schedule new futures after shutdown");
    checkFunction(fn, "fn");
    checkOptionNames(options, mapOptionNames, "executor.map()");
    if (options.chunksize !== undefined) checkInteger(options.chunksize, "options.chunksize", 1);
    checkTimeout(options.timeout, "options.timeout");
    checkFunction(options.onProgress, "options.onProgress");
    checkProgress(options.progress, "options.progress");
    this.#workers.prepare(fn, "the task function");
    const iterate = () =>
      lazyResults(this.#workers, fn, items, true, options, this.#size, "executor.map") as AsyncGenerator<Awaited<R>>;
    return {
      [Symbol.asyncIterator]: iterate,
      // biome-ignore lint/suspicious/noThenProperty: awaiting the result collects the stream
      then(onFulfilled, onRejected) {
        const all = (async () => {
          const out: Awaited<R>[] = [];
          for await (const value of iterate()) out.push(value);
          return out;
        })();
        return all.then(onFulfilled, onRejected);
      },
    };
  }

  /**
   * Stops accepting work. With `cancelFutures`, futures still waiting for a worker are cancelled (as
   * in Python, a call already handed to a worker runs, whether it has started or not). With
   * `wait` (default true), resolves once the submitted work is done and the workers have exited.
   * With `wait: false` it returns at once and the executor no longer keeps the program alive: the
   * workers finish the work while the program runs, and end with it (a call that hangs cannot hold
   * the program open; `terminateWorkers()` or `killWorkers()` stop it sooner).
   */
  async shutdown(options: { wait?: boolean; cancelFutures?: boolean } = {}): Promise<void> {
    checkOptionNames(options, shutdownOptionNames, "executor.shutdown()");
    const { wait = true, cancelFutures = false } = options;
    this.#shutdown = true;
    // as Python's: what waits for a worker is cancelled; what a worker already holds (its call
    // queue) runs, though `cancel()` could still take it back while it has not started
    if (cancelFutures) for (const future of [...this.#pending]) if (!future._assigned?.()) future.cancel();
    this.#workers.close();
    if (wait) await this.#workers.join();
    else this.#workers.detach();
  }

  /**
   * Stops every worker now with SIGTERM (a thread is stopped; Python 3.14's `terminate_workers`)
   * and resolves once they have exited; unfinished futures fail with a ProcessError. The executor
   * is shut down.
   */
  async terminateWorkers(): Promise<void> {
    await this.#stopWorkers("SIGTERM");
  }

  /** Like `terminateWorkers`, with SIGKILL, which a worker cannot catch (Python 3.14's `kill_workers`). */
  async killWorkers(): Promise<void> {
    await this.#stopWorkers("SIGKILL");
  }

  async #stopWorkers(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    this.#shutdown = true;
    this.#workers.terminate(
      new ProcessError("the executor's workers were terminated before this task finished"),
      signal === "SIGTERM" ? "terminate" : "kill",
    );
    await this.#workers.join();
  }

  /**
   * What the executor is doing now, as `pool.stats()` reports it: calls queued and running, calls
   * completed and failed, utilization (0 to 1; workers not started yet count as idle) and each
   * worker's name, pid and state. A call is one `submit` or one chunk of `map`.
   */
  stats(): PoolStats {
    return this.#workers.stats();
  }

  /** `await using` waits for submitted work and shuts down, like Python's `with`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown({ wait: true });
  }

  /** Shows the start method, the number of workers, the pending work and whether it is shut down. */
  [inspect.custom](): string {
    return `ProcessPoolExecutor { method: '${this.#method}', maxWorkers: ${this.#size}, pending: ${this.#pending.size}, shutdown: ${this.#shutdown} }`;
  }
}

type Options<M extends (...args: any[]) => unknown, I extends number> = NonNullable<Parameters<M>[I]>;
const mapOptionNames = optionNames<Options<ProcessPoolExecutor["map"], 2>>({
  chunksize: true,
  timeout: true,
  signal: true,
  onProgress: true,
  progress: true,
});
const shutdownOptionNames = optionNames<Options<ProcessPoolExecutor["shutdown"], 0>>({
  wait: true,
  cancelFutures: true,
});

/** When `wait()` returns. */
export type ReturnWhen = "FIRST_COMPLETED" | "FIRST_EXCEPTION" | "ALL_COMPLETED";

/** The futures of an iterable, checked. */
function checkFutures<R>(value: Iterable<Future<R>>, name: string): Future<R>[] {
  const iterable = value !== null && typeof value === "object" && Symbol.iterator in value;
  const all = iterable ? [...value] : [];
  if (!iterable || all.some((f) => !(f instanceof Future))) {
    throw new TypeError(`${name} must be an iterable of Futures from ProcessPoolExecutor.submit()`);
  }
  return all;
}

/**
 * Waits for futures: all of them (default), the first to finish, or the first to fail. Resolves to
 * `{ done, notDone }` after at most `timeout` ms.
 */
export async function wait<R>(
  futures: Iterable<Future<R>>,
  options: { timeout?: number; returnWhen?: ReturnWhen } = {},
): Promise<{
  /** The futures that finished, failed or were cancelled. */
  done: Set<Future<R>>;
  /** The others, still pending or running. */
  notDone: Set<Future<R>>;
}> {
  futures = checkFutures(futures, "futures");
  checkOptionNames(options, waitOptionNames, "wait()");
  const { timeout, returnWhen = "ALL_COMPLETED" } = options;
  checkTimeout(timeout, "options.timeout");
  if (!["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"].includes(returnWhen)) {
    throw new TypeError(
      `options.returnWhen must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED (got ${returnWhen})`,
    );
  }
  const all = new Set(futures);
  const split = () => {
    const done = new Set<Future<R>>();
    const notDone = new Set<Future<R>>();
    for (const f of all) (f.done() ? done : notDone).add(f);
    return { done, notDone };
  };
  const failedNow = async (f: Future<R>) => f.done() && !f.cancelled() && (await f.exception()) !== undefined;
  const satisfied = async () => {
    const { done, notDone } = split();
    if (notDone.size === 0) return true;
    if (returnWhen === "FIRST_COMPLETED") return done.size > 0;
    if (returnWhen === "FIRST_EXCEPTION") for (const f of done) if (await failedNow(f)) return true;
    return false;
  };
  const deadline = timeout === undefined ? undefined : performance.now() + timeout;
  while (!(await satisfied())) {
    const remaining = deadline === undefined ? undefined : deadline - performance.now();
    if (remaining !== undefined && remaining <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    const pending = [...all].filter((f) => !f.done()).map((f) => f._settled());
    if (remaining !== undefined) pending.push(new Promise((resolve) => (timer = setTimeout(resolve, remaining))));
    await Promise.race(pending);
    clearTimeout(timer);
  }
  return split();
}

const waitOptionNames = optionNames<Options<typeof wait, 1>>({ timeout: true, returnWhen: true });

/**
 * Yields each future once, as it finishes (duplicates once). Throws TimeoutError
 * `"N (of M) futures unfinished"` if they are not all done within `timeout` ms of the call.
 */
export async function* asCompleted<R>(futures: Iterable<Future<R>>, timeout?: number): AsyncGenerator<Future<R>> {
  checkTimeout(timeout, "timeout");
  const all = new Set(checkFutures(futures, "futures"));
  const deadline = timeout === undefined ? undefined : performance.now() + timeout;
  const left = new Set(all);
  while (left.size) {
    const ready = [...left].filter((f) => f.done());
    for (const f of ready) {
      left.delete(f);
      yield f;
    }
    if (!left.size) break;
    const remaining = deadline === undefined ? undefined : deadline - performance.now();
    if (remaining !== undefined && remaining <= 0) {
      throw new TimeoutError(`${left.size} (of ${all.size}) futures unfinished`);
    }
    let timer: NodeJS.Timeout | undefined;
    const waits: Promise<unknown>[] = [...left].map((f) => f._settled());
    if (remaining !== undefined) waits.push(new Promise((resolve) => (timer = setTimeout(resolve, remaining))));
    await Promise.race(waits);
    clearTimeout(timer);
  }
}
