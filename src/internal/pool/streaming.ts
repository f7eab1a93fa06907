/**
 * Lazy, bounded streaming of results over the worker engine, shared by `Pool.imap`,
 * `Pool.imapUnordered` and `ProcessPoolExecutor.map`:
 *
 *   input (sync or async, maybe infinite) ─► chunks ─► at most `limit` jobs in flight ─► yield results
 *
 * An input that throws yields every result before the failure, then the input's error. Leaving the
 * loop early (break, an error) cancels the jobs still in flight and closes the input iterator.
 */
import { TimeoutError } from "../../errors.js";
import { withCallerFrames } from "../wire/remote-errors.js";
import type { Job, PoolEngine } from "./engine.js";
import { progressFor } from "../progress.js";

/** An input: any iterable or async iterable. */
export type Input<T> = Iterable<T> | AsyncIterable<T>;

type Fn = (...args: any[]) => unknown;

/** Options of a streamed call. */
export interface StreamOptions {
  chunksize?: number;
  signal?: AbortSignal;
  timeout?: number;
  onProgress?: (done: number, total: number | undefined) => void;
  /** A progress bar on stderr when it is a terminal (see `MapOptions.progress`). */
  progress?: boolean | string;
}

/** True for a synchronous iterable (arrays, generators, sets...). */
export function isSyncIterable<T>(items: Input<T>): items is Iterable<T> {
  return typeof (items as Iterable<T>)[Symbol.iterator] === "function";
}

type Outcome = { ok: true; value: unknown[] } | { ok: false; error: unknown };

/**
 * Streams results of `fn` over `items`: in input order when `ordered`, else as they finish.
 * `label` names the call on its progress bar.
 */
export async function* lazyResults(
  workers: PoolEngine,
  fn: Fn,
  items: Input<unknown>,
  ordered: boolean,
  options: StreamOptions,
  size: number,
  label: string,
): AsyncGenerator<unknown> {
  const chunksize = options.chunksize ?? 1;
  // Enough chunks in flight to keep every worker busy with prefetch, and no more: memory stays
  // bounded however long (or infinite) the input is.
  const limit = Math.max(4, size * 4);
  const total = knownLength(items);
  const source = isSyncIterable(items) ? items[Symbol.iterator]() : items[Symbol.asyncIterator]();
  const finished = new Map<number, Outcome>();
  const jobs = new Map<number, Job>();
  let wake: (() => void) | undefined;
  let submitted = 0;
  let nextOut = 0;
  let inputDone = false;
  let inputError: { error: unknown } | undefined;
  let itemsSeen = 0;
  let itemsDone = 0;
  let aborted: { error: unknown } | undefined;
  const bar = progressFor(options.progress, label);
  const stop = watch(options, (reason) => {
    aborted = { error: reason };
    wake?.();
  });
  try {
    for (;;) {
      while (!inputDone && jobs.size < limit) {
        const chunk: unknown[] = [];
        try {
          while (chunk.length < chunksize) {
            const step = await source.next();
            if (step.done) {
              inputDone = true;
              break;
            }
            chunk.push(step.value);
          }
        } catch (error) {
          inputDone = true;
          inputError = { error };
        }
        if (chunk.length === 0) break;
        itemsSeen += chunk.length;
        const index = submitted++;
        const job: Job = {
          fn,
          mode: "map",
          args: chunk,
          encoded: workers.encodeArgs(chunk, `items[${itemsSeen - chunk.length}]`),
          settle: (outcome) => {
            jobs.delete(index);
            finished.set(index, outcome as Outcome);
            if (outcome.ok) {
              itemsDone += chunk.length;
              bar?.update(itemsDone, total);
              options.onProgress?.(itemsDone, total);
            }
            wake?.();
          },
        };
        jobs.set(index, job);
        workers.submit(job);
      }
      if (aborted) throw aborted.error;
      const key = ordered ? nextOut : finished.keys().next().value;
      const outcome = key === undefined ? undefined : finished.get(key);
      if (outcome) {
        finished.delete(key!);
        if (ordered) nextOut++;
        if (!outcome.ok) throw withCallerFrames(outcome.error);
        for (const value of outcome.value) yield value;
        continue;
      }
      if (jobs.size === 0 && inputDone) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (inputError) throw inputError.error;
  } finally {
    stop();
    bar?.end();
    for (const job of jobs.values()) workers.cancel(job, aborted !== undefined);
    if (!inputDone) await source.return?.();
  }
}

/**
 * How many items `items` yields, when that is known without pulling it: arrays, typed arrays,
 * strings, sets and maps. Undefined for iterators, generators and async inputs.
 */
export function knownLength(items: Input<unknown>): number | undefined {
  if (Array.isArray(items)) return items.length;
  if (typeof items === "string") {
    let n = 0;
    for (const _ of items as string) n++;
    return n;
  }
  if (items instanceof Set || items instanceof Map) return items.size;
  if (ArrayBuffer.isView(items) && !(items instanceof DataView)) return (items as unknown as ArrayLike<unknown>).length;
  return undefined;
}

/** Calls `onStop(reason)` when the call's signal aborts or its timeout passes; returns a disposer. */
export function watch(
  options: { signal?: AbortSignal; timeout?: number },
  onStop: (reason: unknown) => void,
): () => void {
  const { signal, timeout } = options;
  if (signal?.aborted) {
    queueMicrotask(() => onStop(signal.reason));
    return () => {};
  }
  const onAbort = () => onStop(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    timeout === undefined
      ? undefined
      : setTimeout(() => onStop(new TimeoutError(`the call did not finish within ${timeout} ms`)), timeout);
  return () => {
    signal?.removeEventListener("abort", onAbort);
    if (timer) clearTimeout(timer);
  };
}
