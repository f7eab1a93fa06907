/**
 * `Pool`: Python's `multiprocessing.Pool` on the start method's pool engine (internal/pool/engine.ts).
 *
 *   map/starmap/mapAsync ─► materialize input ─► chunks (≈4 per worker) ─► jobs ─► results in order
 *   apply/applyAsync     ─► one job
 *   imap/imapUnordered   ─► pull input lazily, at most a few chunks per worker in flight ─► yield
 *
 * Every call takes `{ signal, timeout }`; map-like calls also take `{ chunksize, onProgress, progress }`.
 * A worker that dies costs only the task it was running (WorkerCrashedError); the pool replaces it.
 */
import { inspect } from "node:util";
import { ProcessError, TimeoutError } from "./errors.js";
import { rethrowWithCallerFrames, withCallerFrames } from "./internal/wire/remote-errors.js";
import type { ClusterOption } from "./internal/cluster/target.js";
import { resolveMethod } from "./backends/registry.js";
import { checkProgress, progressFor } from "./internal/progress.js";
import type { StartMethod } from "./internal/runtime.js";
import {
  type OptionNames,
  checkFunction,
  checkInteger,
  checkOptionNames,
  checkSignal,
  checkTimeout,
  optionNames,
} from "./internal/validate.js";
import type { Job, PoolEngine, PoolStats } from "./internal/pool/engine.js";
import { engineFor } from "./backends/engines.js";
import { type Input, isSyncIterable, lazyResults, watch } from "./internal/pool/streaming.js";
import { checkMayStartChildren } from "./process.js";
import { cpuCount } from "./util.js";

/** Options of `new Pool(...)`. */
export interface PoolOptions {
  /** Number of workers; defaults to `cpuCount()`. */
  processes?: number;
  /** Runs once in every worker (and every replacement) before its first task. */
  initializer?: (...args: any[]) => unknown;
  /** Arguments for `initializer`. */
  initargs?: unknown[];
  /** Replace a worker after it ran this many tasks (default: never). */
  maxTasksPerChild?: number;
  /**
   * Run a task again, up to this many times, when the worker running it crashes (default 0: the
   * task rejects with WorkerCrashedError). Use it only for tasks that are safe to run twice.
   */
  retries?: number;
  /** Heap limit of each worker in MiB: a worker that exceeds it dies (its task gets WorkerCrashedError). */
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

const poolOptionNames = optionNames<PoolOptions>({
  processes: true,
  initializer: true,
  initargs: true,
  maxTasksPerChild: true,
  retries: true,
  maxHeapMb: true,
  context: true,
  cluster: true,
});

/** Options every pool call accepts. */
export interface CallOptions {
  /** Cancels the call: queued tasks are dropped, running ones have their worker replaced. */
  signal?: AbortSignal;
  /** Rejects with TimeoutError after this many ms, cancelling like `signal`. */
  timeout?: number;
}

const callNames: OptionNames<CallOptions> = { signal: true, timeout: true };
const callOptionNames = optionNames<CallOptions>(callNames);
export interface MapOptions extends CallOptions {
  /**
   * Items per task. `map` defaults to about four chunks per worker (on a cluster pool, chunks of 256
   * to 4 096 items; see the README's "Beyond one machine"); `imap` to 1.
   */
  chunksize?: number;
  /**
   * Called after each chunk with the items done and the input's length: always known for `map`,
   * and for `imap` when the input is an array, typed array, string, `Set` or `Map` (undefined for
   * a generator, an iterator or an async input).
   */
  onProgress?: (done: number, total: number | undefined) => void;
  /**
   * Draws a progress bar on stderr while the call runs, when stderr is a terminal (nothing at all
   * otherwise): done/total, rate and ETA (done and rate when the total is unknown), redrawn at most
   * 10 times a second and blanked when the call ends. A string is the bar's label (default: the
   * call's name). Default false.
   */
  progress?: boolean | string;
}

const mapNames: OptionNames<MapOptions> = { ...callNames, chunksize: true, onProgress: true, progress: true };
const mapOptionNames = optionNames<MapOptions>(mapNames);

/** Callbacks of the `...Async` calls, as in Python. */
export interface AsyncCallbacks<R> {
  /** Called with the result once it is ready. */
  callback?: (result: R) => void;
  /** Called with the error if the call fails. */
  errorCallback?: (error: unknown) => void;
}

const callbackNames: OptionNames<AsyncCallbacks<unknown>> = { callback: true, errorCallback: true };
const applyAsyncOptionNames = optionNames<CallOptions & AsyncCallbacks<unknown>>({ ...callNames, ...callbackNames });
const mapAsyncOptionNames = optionNames<MapOptions & AsyncCallbacks<unknown>>({ ...mapNames, ...callbackNames });

export type { Input };

type Fn = (...args: any[]) => unknown;

/**
 * The pending result of an `...Async` call, like Python's `AsyncResult`. Its promise never
 * rejects unhandled: errors surface only through `get()` and `errorCallback`.
 */
export class AsyncResult<R> {
  #state: "pending" | "fulfilled" | "rejected" = "pending";
  #value: R | undefined;
  #error: unknown;
  readonly #done: Promise<void>;

  /** @internal */
  constructor(work: Promise<R>, callbacks: AsyncCallbacks<R> = {}) {
    this.#done = work.then(
      (value) => {
        this.#state = "fulfilled";
        this.#value = value;
        callbacks.callback?.(value);
      },
      (error) => {
        this.#state = "rejected";
        this.#error = error;
        callbacks.errorCallback?.(error);
      },
    );
  }

  /** The result; rejects with the task's error, or with TimeoutError if not ready within `timeout` ms. */
  async get(timeout?: number): Promise<R> {
    await this.wait(timeout);
    if (this.#state === "pending") throw new TimeoutError(`the result was not ready within ${timeout} ms`);
    if (this.#state === "rejected") throw withCallerFrames(this.#error);
    return this.#value as R;
  }

  /** Waits until the result is ready, or `timeout` ms. */
  async wait(timeout?: number): Promise<void> {
    checkTimeout(timeout, "timeout");
    if (timeout === undefined) return this.#done;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
  }

  /** True once the call has finished, either way. */
  ready(): boolean {
    return this.#state !== "pending";
  }

  /** True if the call finished without error; throws if it has not finished. */
  successful(): boolean {
    if (this.#state === "pending") throw new ProcessError("the result is not ready yet: call ready() or wait() first");
    return this.#state === "fulfilled";
  }
}

/**
 * A pool of worker processes (or threads) that runs functions on many inputs in parallel, like
 * Python's `multiprocessing.Pool`. Leave it with `await using` or call `terminate()` when done.
 *
 * ```ts
 * await using pool = new Pool(4);
 * const squares = await pool.map(square, [1, 2, 3]);
 * ```
 */
export class Pool {
  readonly #workers: PoolEngine;
  readonly #method: StartMethod | "cluster";
  readonly #size: number;

  constructor(options?: number | PoolOptions) {
    const o: PoolOptions = typeof options === "number" || options === undefined ? { processes: options } : options;
    if (o === null || typeof o !== "object") {
      throw new TypeError(`Pool options must be a number of processes or an object (got ${typeof options})`);
    }
    checkOptionNames(o, poolOptionNames, "new Pool()");
    const processes = o.processes ?? cpuCount();
    checkInteger(processes, "options.processes", 1);
    if (o.maxTasksPerChild !== undefined && o.maxTasksPerChild !== null) {
      checkInteger(o.maxTasksPerChild, "options.maxTasksPerChild", 1);
    }
    if (o.retries !== undefined) checkInteger(o.retries, "options.retries", 0);
    if (o.maxHeapMb !== undefined) checkInteger(o.maxHeapMb, "options.maxHeapMb", 1);
    checkFunction(o.initializer, "options.initializer");
    if (o.initargs !== undefined && !Array.isArray(o.initargs)) {
      throw new TypeError(`options.initargs must be an array (got ${typeof o.initargs})`);
    }
    this.#method = resolveMethod(o);
    checkMayStartChildren();
    this.#size = processes;
    this.#workers = engineFor(this.#method, {
      size: processes,
      initializer: o.initializer,
      initargs: o.initargs ?? [],
      maxTasksPerChild: o.maxTasksPerChild ?? 0,
      retries: o.retries ?? 0,
      maxHeapMb: o.maxHeapMb,
      eager: true,
      name: "PoolWorker",
      cluster: o.cluster,
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.#size;
  }

  /** The start method of this pool. */
  get startMethod(): StartMethod | "cluster" {
    return this.#method;
  }

  /** Calls `fn(...args)` in a worker and resolves to its result. */
  apply<F extends Fn>(
    fn: F,
    args: Parameters<F> = [] as unknown as Parameters<F>,
    options: CallOptions = {},
  ): Promise<Awaited<ReturnType<F>>> {
    // the common case, with neither signal nor timeout: one job and one promise, nothing else
    if (
      options !== null &&
      typeof options === "object" &&
      options.signal === undefined &&
      options.timeout === undefined
    ) {
      return new Promise<Awaited<ReturnType<F>>>((resolve, reject) => {
        try {
          checkFunction(fn, "fn");
          if (!Array.isArray(args)) throw new TypeError(`args must be an array of arguments (got ${typeof args})`);
          checkOptionNames(options, callOptionNames, "pool.apply()");
          this.#workers.submit({
            fn,
            mode: "call",
            args,
            encoded: this.#workers.encodeArgs(args, "args"),
            // a method, not an arrow: a bundle that keeps function names renames every arrow it creates
            settle(outcome) {
              outcome.ok ? resolve(outcome.value as Awaited<ReturnType<F>>) : reject(outcome.error);
            },
          });
        } catch (error) {
          reject(error);
        }
      }).catch(rethrowWithCallerFrames);
    }
    return this.#applyAsync(fn, args, options, callOptionNames, "pool.apply()").get();
  }

  /** Like `apply`, returning an `AsyncResult` at once. */
  applyAsync<F extends Fn>(
    fn: F,
    args: Parameters<F> = [] as unknown as Parameters<F>,
    options: CallOptions & AsyncCallbacks<Awaited<ReturnType<F>>> = {},
  ): AsyncResult<Awaited<ReturnType<F>>> {
    return this.#applyAsync(fn, args, options, applyAsyncOptionNames, "pool.applyAsync()");
  }

  #applyAsync<F extends Fn>(
    fn: F,
    args: Parameters<F>,
    options: CallOptions & AsyncCallbacks<Awaited<ReturnType<F>>>,
    names: ReadonlySet<string>,
    where: string,
  ): AsyncResult<Awaited<ReturnType<F>>> {
    const work = (async (): Promise<Awaited<ReturnType<F>>> => {
      checkFunction(fn, "fn");
      if (!Array.isArray(args)) throw new TypeError(`args must be an array of arguments (got ${typeof args})`);
      checkCall(options, names, where);
      const [[value]] = (await this.#run(fn, "call", [args as unknown[]], options, undefined)) as [[unknown]];
      return value as Awaited<ReturnType<F>>;
    })();
    return new AsyncResult(work, options);
  }

  /** Calls `fn(item)` for every item, in parallel, and resolves to the results in input order. */
  map<T, R>(fn: (item: T) => R, items: Input<T>, options: MapOptions = {}): Promise<Awaited<R>[]> {
    return this.#mapLike(fn, items, "map", options, mapOptionNames, "pool.map()").get() as Promise<Awaited<R>[]>;
  }

  /** Like `map`, returning an `AsyncResult` at once. */
  mapAsync<T, R>(
    fn: (item: T) => R,
    items: Input<T>,
    options: MapOptions & AsyncCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    return this.#mapLike(fn, items, "map", options, mapAsyncOptionNames, "pool.mapAsync()") as AsyncResult<
      Awaited<R>[]
    >;
  }

  /** Calls `fn(...args)` for every argument tuple; results in input order. */
  starmap<A extends readonly unknown[], R>(
    fn: (...args: A) => R,
    items: Input<A | Readonly<A>>,
    options: MapOptions = {},
  ): Promise<Awaited<R>[]> {
    const result = this.#mapLike(fn, items as Input<unknown>, "star", options, mapOptionNames, "pool.starmap()");
    return result.get() as Promise<Awaited<R>[]>;
  }

  /** Like `starmap`, returning an `AsyncResult` at once. */
  starmapAsync<A extends readonly unknown[], R>(
    fn: (...args: A) => R,
    items: Input<A | Readonly<A>>,
    options: MapOptions & AsyncCallbacks<Awaited<R>[]> = {},
  ): AsyncResult<Awaited<R>[]> {
    const result = this.#mapLike(
      fn,
      items as Input<unknown>,
      "star",
      options,
      mapAsyncOptionNames,
      "pool.starmapAsync()",
    );
    return result as AsyncResult<Awaited<R>[]>;
  }

  /** Streams `fn(item)` results in input order, pulling the input lazily (infinite inputs work). */
  imap<T, R>(fn: (item: T) => R, items: Input<T>, options: MapOptions = {}): AsyncIterable<Awaited<R>> {
    return this.#lazy(fn, items, true, options, "pool.imap()") as AsyncIterable<Awaited<R>>;
  }

  /** Streams `fn(item)` results as each task finishes. */
  imapUnordered<T, R>(fn: (item: T) => R, items: Input<T>, options: MapOptions = {}): AsyncIterable<Awaited<R>> {
    return this.#lazy(fn, items, false, options, "pool.imapUnordered()") as AsyncIterable<Awaited<R>>;
  }

  /** No more work is accepted; workers exit once the submitted work is done. */
  close(): void {
    this.#workers.close();
  }

  /** Stops every worker now; pending and running calls reject with a ProcessError. */
  async terminate(): Promise<void> {
    this.#workers.terminate(new ProcessError("the pool was terminated before this task finished"));
    await this.#workers.join();
  }

  /** Waits for the workers to exit; call `close()` or `terminate()` first. */
  async join(): Promise<void> {
    if (this.#workers.state === "running") {
      throw new ProcessError("the pool is still running: call close() or terminate() before join()");
    }
    await this.#workers.join();
  }

  /** `await using pool = new Pool()` terminates the pool on leaving the block, as Python's `with`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.terminate();
  }

  /**
   * What the pool is doing now: tasks queued and running, tasks completed and failed since it was
   * created, its utilization (0 to 1) and each worker's name, pid and state. A task is one `apply`
   * call or one chunk of a map-like call. See `PoolStats` for the exact meaning of each field.
   *
   * ```ts
   * const { queued, running, utilization, workers } = pool.stats();
   * ```
   */
  stats(): PoolStats {
    return this.#workers.stats();
  }

  /** Shows the state, the start method, the size, the tasks queued and the tasks running. */
  [inspect.custom](): string {
    const { queued, running } = this.#workers.stats();
    return `Pool { state: '${this.#workers.state}', method: '${this.#method}', size: ${this.#size}, queued: ${queued}, running: ${running} }`;
  }

  #mapLike(
    fn: Fn,
    items: Input<unknown>,
    mode: "map" | "star",
    options: MapOptions & AsyncCallbacks<any>,
    names: ReadonlySet<string>,
    where: string,
  ) {
    // Bad input rejects the call's promise (it is never thrown synchronously).
    const work = (async () => {
      checkFunction(fn, "fn");
      checkInput(items);
      checkCall(options, names, where);
      if (options.chunksize !== undefined) checkInteger(options.chunksize, "options.chunksize", 1);
      this.#workers.prepare(fn, "the task function");
      // an array is only read (chunks are slices), so it need not be copied first
      const list = Array.isArray(items) ? items : isSyncIterable(items) ? Array.from(items) : await collect(items);
      const chunksize =
        options.chunksize ??
        this.#workers.defaultChunksize?.(list.length) ??
        Math.max(1, Math.ceil(list.length / (4 * this.#size)));
      const chunks: unknown[][] = [];
      for (let i = 0; i < list.length; i += chunksize) chunks.push(list.slice(i, i + chunksize));
      const bar = progressFor(options.progress, where.slice(0, -2));
      if (!bar) return joinChunks(await this.#run(fn, mode, chunks, options, list.length), list.length);
      const { onProgress } = options;
      const onBoth = (done: number, total: number | undefined) => {
        bar.update(done, total);
        onProgress?.(done, total);
      };
      try {
        const results = await this.#run(fn, mode, chunks, { ...options, onProgress: onBoth }, list.length);
        return joinChunks(results, list.length);
      } finally {
        bar.end();
      }
    })();
    return new AsyncResult(work, options);
  }

  /** Runs one job per chunk and resolves to the per-chunk results, in order; cancels on failure. */
  #run(fn: Fn, mode: Job["mode"], chunks: unknown[][], options: MapOptions, total: number | undefined) {
    return new Promise<unknown[][]>((resolve, reject) => {
      const results: unknown[][] = new Array(chunks.length);
      const jobs: Job[] = [];
      let remaining = chunks.length;
      let done = 0;
      let failed = false;
      const stop = watch(options, (reason) => fail(reason, true));
      const fail = (error: unknown, interrupt = false) => {
        if (failed) return;
        failed = true;
        stop();
        for (const job of jobs) this.#workers.cancel(job, interrupt);
        reject(error);
      };
      if (remaining === 0) {
        stop();
        resolve(results);
        return;
      }
      try {
        for (let i = 0; i < chunks.length; i++) {
          const chunk = chunks[i]!;
          const job: Job = {
            fn,
            mode,
            args: chunk,
            encoded: this.#workers.encodeArgs(chunk, mode === "call" ? "args" : `items[${i}]`),
            interruptible: options.signal !== undefined || options.timeout !== undefined,
            settle: (outcome) => {
              if (failed) return;
              if (!outcome.ok) return fail(outcome.error);
              results[i] = mode === "call" ? [outcome.value] : (outcome.value as unknown[]);
              done += mode === "call" ? 1 : chunk.length;
              if (options.onProgress) options.onProgress(done, total);
              if (--remaining === 0) {
                failed = true;
                stop();
                resolve(results);
              }
            },
          };
          jobs.push(job);
        }
        for (const job of jobs) this.#workers.submit(job);
      } catch (error) {
        fail(error);
      }
    });
  }

  #lazy(fn: Fn, items: Input<unknown>, ordered: boolean, options: MapOptions, where: string): AsyncIterable<unknown> {
    checkFunction(fn, "fn");
    checkInput(items);
    checkCall(options, mapOptionNames, where);
    if (options.chunksize !== undefined) checkInteger(options.chunksize, "options.chunksize", 1);
    this.#workers.prepare(fn, "the task function");
    const workers = this.#workers;
    const size = this.#size;
    const label = where.slice(0, -2);
    return {
      [Symbol.asyncIterator]: () => lazyResults(workers, fn, items, ordered, options, size, label),
    };
  }
}

function checkCall(
  options: CallOptions & AsyncCallbacks<never> & { onProgress?: unknown; progress?: unknown },
  names: ReadonlySet<string>,
  where: string,
): void {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`options must be an object (got ${typeof options})`);
  }
  checkOptionNames(options, names, where);
  checkSignal(options.signal, "options.signal");
  checkTimeout(options.timeout, "options.timeout");
  checkFunction(options.callback, "options.callback");
  checkFunction(options.errorCallback, "options.errorCallback");
  checkFunction(options.onProgress, "options.onProgress");
  checkProgress(options.progress, "options.progress");
}

function checkInput(items: unknown): void {
  if (items === null || typeof items !== "object" || !(Symbol.iterator in items || Symbol.asyncIterator in items)) {
    if (typeof items === "string") return;
    throw new TypeError(`items must be an iterable or async iterable (got ${items === null ? "null" : typeof items})`);
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/**
 * The chunks' results as one packed array (a holey one, as `new Array(n)` makes, is several times
 * slower to send to workers again): `concat` copies big chunks fastest (Array.prototype.flat is
 * several times slower on a million items), a loop many small ones.
 */
function joinChunks(chunks: unknown[][], total: number): unknown[] {
  if (chunks.length === 1) return chunks[0]!;
  if (total < 64 * chunks.length) {
    const out: unknown[] = [];
    for (const chunk of chunks) for (let i = 0; i < chunk.length; i++) out.push(chunk[i]);
    return out;
  }
  // a group at a time (a call takes only so many arguments), the groups joined once at the end
  const groups: unknown[][] = [];
  for (let i = 0; i < chunks.length; i += 1024) groups.push(([] as unknown[]).concat(...chunks.slice(i, i + 1024)));
  return groups.length === 1 ? groups[0]! : ([] as unknown[]).concat(...groups);
}
