/**
 * What the children of the shared-state benchmarks run (`manager`, `locks`, `queue`): exported so
 * that a child imports them by name. Each child measures its own loop (or stamps it on a clock the
 * parent shares) so that process start-up stays out of the figures.
 */
import type { Barrier, DictProxy, Queue, SharedArray, SimpleQueue, Value } from "multiprocessing-ts";

/** A clock every process of the machine shares (as in process-start.ts). */
export const now = (): number => performance.timeOrigin + performance.now();

/** The size of the warm-up round that comes before the measured ones. */
export const warmUpCount = (n: number): number => Math.max(2, n >> 2);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Manager round trips, in a child: `n` sequential awaited calls alternating `d.set(k, i)` and
 * `d.get(k)`, then `n` sets sent `batch` at a time without awaiting each. One warm-up and `runs`
 * measured rounds; the medians (calls/s) go back in `d` under "sequential" and "pipelined".
 */
export async function managerRoundTrips(
  d: DictProxy<string, number>,
  n: number,
  runs: number,
  batch: number,
): Promise<void> {
  const sequential: number[] = [];
  const pipelined: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const count = r === 0 ? warmUpCount(n) : n;
    let t0 = performance.now();
    for (let i = 0; i < count; i += 2) {
      await d.set("k", i);
      const back = await d.get("k");
      if (back !== i) throw new Error(`d.get("k") returned ${back} after d.set("k", ${i})`);
    }
    const seq = count / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let i = 0; i < count; i += batch) {
      const calls: Promise<void>[] = [];
      for (let j = i; j < Math.min(count, i + batch); j++) calls.push(d.set("k", j));
      await Promise.all(calls);
    }
    const pipe = count / ((performance.now() - t0) / 1000);
    const last = await d.get("k");
    if (last !== count - 1) throw new Error(`after the pipelined sets d.get("k") returned ${last}, not ${count - 1}`);
    if (r > 0) {
      sequential.push(seq);
      pipelined.push(pipe);
    }
  }
  await d.set("sequential", median(sequential));
  await d.set("pipelined", median(pipelined));
}

/**
 * One of the contenders: in each of `rounds` rounds, waits at `barrier` with the others and the
 * parent, adds 1 to `counter` `times` times under its lock, stamps its start and end in
 * `stamps[2 * slot]` and `stamps[2 * slot + 1]`, and waits at `barrier` again.
 */
export async function contendedIncrements(
  counter: Value<"i">,
  times: number,
  rounds: number,
  barrier: Barrier,
  stamps: SharedArray<"d">,
  slot: number,
): Promise<void> {
  const lock = counter.getLock();
  for (let r = 0; r < rounds; r++) {
    await barrier.wait();
    const t0 = now();
    for (let i = 0; i < times; i++) {
      lock.acquireSync();
      counter.value += 1;
      lock.release();
    }
    stamps[2 * slot] = t0;
    stamps[2 * slot + 1] = now();
    await barrier.wait();
  }
}

/** How a producer puts: awaiting each put, or `batch` puts at a time. */
export type PutMode = "awaited" | "batched";

/**
 * The warm-up round of the queue benchmark: a full round. At well under a microsecond per item, a
 * quarter round ends before the JIT has finished with the put and get paths.
 */
export const queueWarmUpCount = (n: number): number => n;

/**
 * The producer of the queue benchmark. For each `[queue, mode, n]`, `rounds` times: waits for a go
 * from the parent on `go`, puts the time (its start), then the numbers 0..n-1 (the first round is
 * the warm-up).
 */
export async function queueProducer(
  plans: [Queue<number> | SimpleQueue<number>, PutMode, number][],
  go: SimpleQueue<number>,
  rounds: number,
  batch: number,
): Promise<void> {
  for (const [queue, mode, count] of plans) {
    for (let r = 0; r < rounds; r++) {
      const n = r === 0 ? queueWarmUpCount(count) : count;
      await go.get();
      await queue.put(now());
      if (mode === "awaited") {
        for (let i = 0; i < n; i++) await queue.put(i);
      } else {
        for (let i = 0; i < n; i += batch) {
          const puts: Promise<void>[] = [];
          for (let j = i; j < Math.min(n, i + batch); j++) puts.push(queue.put(j));
          await Promise.all(puts);
        }
      }
    }
  }
}

/**
 * The far end of the queue round trips: gets each number from `from` and puts it on `to`, until it
 * gets -1.
 */
export async function queueEcho(from: Queue<number>, to: Queue<number>): Promise<void> {
  for (;;) {
    const x = await from.get();
    if (x < 0) return;
    await to.put(x);
  }
}
