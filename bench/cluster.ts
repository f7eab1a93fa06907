/**
 * The cluster suite of `npm run bench`: the cluster start method on this machine, a private
 * redis-server on a Unix socket and two `multiprocessing-ts worker` commands of one local process
 * each (WORKERS in all, as every pool of the bench), beside the local thread and spawn pools and
 * beside the engine's own floor, a bare BullMQ producer and two bare BullMQ worker processes:
 *
 *   one-item tasks  bare pair: Queue.addBulk ─► 2 × Worker (processor returns the data) ─► QueueEvents "completed"
 *                   cluster pool: applyAsync × n, all in flight ─► the same Redis, 2 worker commands
 *                   local pools: applyAsync × n
 *   map             n trivial items: cluster with default chunks and with chunksize 100 (a pool of 8, and
 *                   one as large as the calls', whose backlog of chunks goes several to a job); local pools
 *   CPU-bound       8 tasks: speed-up over sequential in this thread; cluster and local pools
 *
 * Each bare worker's BullMQ concurrency is the worker command's (2 × its processes), so the pair
 * and the pool have the same jobs in flight at the workers. Every pool is started, and has run a
 * task, before the clock starts. Skipped, with the reason on every row, without redis-server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Pool } from "multiprocessing-ts";
import { type LocalCluster, findRedisServer, startLocalCluster } from "../src/tools.ts";
import type { Row } from "./row.js";
import { WORKERS, here } from "./peers.js";
import { cpuLoop, identity } from "./tasks-min.js";

/** How much work: the full suite is 10 000 one-item tasks, 1 000 000 map items, 8 × 60M loop iterations. */
export interface ClusterSizes {
  calls: number;
  map: number;
  cpu: number;
  /** Timed runs per figure after a warm-up; the median is reported. */
  runs: number;
}

const SUITE = "cluster";
/** Worker commands (and bare BullMQ workers), each with WORKERS / CLUSTER_WORKERS local processes. */
const CLUSTER_WORKERS = 2;
const PER_WORKER = Math.max(1, WORKERS / CLUSTER_WORKERS);
const BARE = "bare BullMQ pair (Queue.addBulk, 2 Workers)";
const CLUSTER = "multiprocessing-ts (cluster)";
/** The calls row with a timeout on every call, which sends each call as a job of its own, as the bare pair does. */
const ALONE = "applyAsync with a timeout (a job per call)";

/** The figures the issue sets for the cluster, by row: what each must reach. */
const TARGETS: Record<string, { text: string; met(value: number, rows: Row[]): boolean | undefined }> = {
  [`${CLUSTER}, applyAsync`]: {
    text: "≥ 0.80× the bare pair",
    met: (value, rows) => {
      const bare = rows.find((r) => r.suite === SUITE && r.name === BARE)?.value;
      return bare === undefined || Number.isNaN(bare) ? undefined : value >= 0.8 * bare;
    },
  },
  [`${CLUSTER}, map, default chunks`]: { text: "≥ 1M items/s", met: (value) => value >= 1e6 },
  [`${CLUSTER}, map, chunksize 100`]: { text: "≥ 100k items/s", met: (value) => value >= 1e5 },
  [`${CLUSTER}, 8 tasks`]: { text: "≥ 1.7× speed-up", met: (value) => value >= 1.7 },
};

async function median(runs: number, measure: () => Promise<number>): Promise<number> {
  await measure(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await measure());
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

/** Runs the suite; `emit` prints and keeps each row, `at` names the row under way. */
export async function clusterSuite(
  emit: (row: Row) => void,
  sizes: ClusterSizes,
  at: (row: string) => void,
): Promise<void> {
  const callsTask = `${sizes.calls} one-item tasks`;
  const mapTask = `map of ${sizes.map} trivial items`;
  const cpuTask = "8 CPU-bound tasks";
  const names: [string, string, string][] = [
    [callsTask, BARE, "calls/s"],
    [callsTask, `${CLUSTER}, applyAsync`, "calls/s"],
    [callsTask, `${CLUSTER}, ${ALONE}`, "calls/s"],
    [callsTask, "multiprocessing-ts (thread), applyAsync", "calls/s"],
    [callsTask, "multiprocessing-ts (spawn), applyAsync", "calls/s"],
    [mapTask, `${CLUSTER}, map, default chunks`, "items/s"],
    [mapTask, `${CLUSTER}, map, chunksize 100`, "items/s"],
    [mapTask, `${CLUSTER}, map, chunksize 100, every chunk in flight`, "items/s"],
    [mapTask, "multiprocessing-ts (thread), map", "items/s"],
    [mapTask, "multiprocessing-ts (spawn), map", "items/s"],
    [cpuTask, `${CLUSTER}, 8 tasks`, "× speed-up"],
    [cpuTask, "multiprocessing-ts (thread), 8 tasks", "× speed-up"],
    [cpuTask, "multiprocessing-ts (spawn), 8 tasks", "× speed-up"],
  ];
  if (!findRedisServer()) {
    for (const [task, name, unit] of names) {
      emit({ suite: SUITE, task, name, value: Number.NaN, unit, note: "redis-server is not installed" });
    }
    return;
  }
  const row = async (task: string, name: string, unit: string, measure: () => Promise<number>) => {
    at(name);
    try {
      emit({ suite: SUITE, task, name, value: await measure(), unit });
    } catch (error) {
      emit({ suite: SUITE, task, name, value: Number.NaN, unit, note: (error as Error).message });
    }
  };
  at("starting redis-server and the worker commands");
  const cluster = await startLocalCluster({ workers: CLUSTER_WORKERS, processes: PER_WORKER });
  try {
    const calls = range(sizes.calls);
    const items = range(sizes.map);
    await row(callsTask, BARE, "calls/s", () => bareBullmq(cluster, sizes.calls, sizes.runs));
    const pools = [
      [CLUSTER, () => new Pool({ cluster: cluster.url, processes: sizes.calls })],
      ["multiprocessing-ts (thread)", () => new Pool({ processes: WORKERS, context: "thread" })],
      ["multiprocessing-ts (spawn)", () => new Pool({ processes: WORKERS, context: "spawn" })],
    ] as const;
    const callRate = (pool: Pool, options: { timeout?: number }) =>
      median(sizes.runs, async () => {
        const t0 = performance.now();
        await Promise.all(calls.map((x) => pool.applyAsync(identity, [x], options).get()));
        return sizes.calls / ((performance.now() - t0) / 1000);
      });
    for (const [who, make] of pools) {
      await row(callsTask, `${who}, applyAsync`, "calls/s", () => withPool(make(), (pool) => callRate(pool, {})));
      if (who === CLUSTER) {
        await row(callsTask, `${CLUSTER}, ${ALONE}`, "calls/s", () =>
          withPool(make(), (pool) => callRate(pool, { timeout: 600_000 })),
        );
      }
    }
    const mapRate = (pool: Pool, chunksize: number | undefined) =>
      median(sizes.runs, async () => {
        const t0 = performance.now();
        const out = await pool.map(identity, items, chunksize ? { chunksize } : {});
        if (out.length !== items.length || out[items.length - 1] !== items.at(-1)) throw new Error("wrong results");
        return sizes.map / ((performance.now() - t0) / 1000);
      });
    // as many jobs in flight as the workers hold at once, plus as many again waiting in Redis
    const clusterPool = () => new Pool({ cluster: cluster.url, processes: 2 * CLUSTER_WORKERS * PER_WORKER * 2 });
    await row(mapTask, `${CLUSTER}, map, default chunks`, "items/s", () =>
      withPool(clusterPool(), (pool) => mapRate(pool, undefined)),
    );
    await row(mapTask, `${CLUSTER}, map, chunksize 100`, "items/s", () =>
      withPool(clusterPool(), (pool) => mapRate(pool, 100)),
    );
    // a pool as large as the calls': its backlog of chunks goes several to a job
    await row(mapTask, `${CLUSTER}, map, chunksize 100, every chunk in flight`, "items/s", () =>
      withPool(new Pool({ cluster: cluster.url, processes: sizes.calls }), (pool) => mapRate(pool, 100)),
    );
    for (const context of ["thread", "spawn"] as const) {
      await row(mapTask, `multiprocessing-ts (${context}), map`, "items/s", () =>
        withPool(new Pool({ processes: WORKERS, context }), (pool) => mapRate(pool, undefined)),
      );
    }
    at("sequential (8 CPU-bound tasks)");
    const inputs = Array.from({ length: 8 }, () => sizes.cpu);
    const t0 = performance.now();
    for (const n of inputs) cpuLoop(n);
    const sequential = performance.now() - t0;
    const speedUp = (pool: Pool) => async () => {
      const t = performance.now();
      await pool.map(cpuLoop, inputs, { chunksize: 1 });
      return sequential / (performance.now() - t);
    };
    await row(cpuTask, `${CLUSTER}, 8 tasks`, "× speed-up", () =>
      withPool(new Pool({ cluster: cluster.url, processes: 8 }), (pool) => speedUp(pool)()),
    );
    for (const context of ["thread", "spawn"] as const) {
      await row(cpuTask, `multiprocessing-ts (${context}), 8 tasks`, "× speed-up", () =>
        withPool(new Pool({ processes: WORKERS, context }), (pool) => speedUp(pool)()),
      );
    }
  } finally {
    await cluster.stop();
  }
}

/** Runs `use` on `pool`, started and warm (it has run a task), and terminates it. */
async function withPool<T>(pool: Pool, use: (pool: Pool) => Promise<T>): Promise<T> {
  try {
    await pool.apply(identity, [0]);
    return await use(pool);
  } finally {
    await pool.terminate();
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * The engine's floor: `n` one-item jobs through BullMQ alone, in the cluster's Redis on a queue of
 * its own, to CLUSTER_WORKERS bare worker processes: Queue.addBulk, then QueueEvents' completed
 * events counted until all `n` are in. Jobs per second, median of `runs` after a warm-up.
 */
async function bareBullmq(cluster: LocalCluster, n: number, runs: number): Promise<number> {
  const { Queue, QueueEvents } = await import("bullmq");
  const name = "bare-bench";
  const connection = { path: cluster.socket, maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const workers: ChildProcess[] = [];
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    for (let i = 0; i < CLUSTER_WORKERS; i++) {
      // the worker command's BullMQ concurrency: 2 jobs per local process
      const args = [here("./workers/bare-bullmq.js"), cluster.socket, name, String(2 * PER_WORKER)];
      workers.push(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] }));
    }
    await Promise.all(workers.map(ready));
    let round = 0;
    return await median(runs, async () => {
      const prefix = `r${round++}-`;
      let done = 0;
      const all = new Promise<void>((resolve) => {
        const onCompleted = ({ jobId }: { jobId: string }) => {
          if (jobId.startsWith(prefix) && ++done === n) {
            events.off("completed", onCompleted);
            resolve();
          }
        };
        events.on("completed", onCompleted);
      });
      const t0 = performance.now();
      await queue.addBulk(
        range(n).map((i) => ({ name: "identity", data: i, opts: { jobId: `${prefix}${i}`, removeOnComplete: true } })),
      );
      await all;
      return n / ((performance.now() - t0) / 1000);
    });
  } finally {
    for (const worker of workers) worker.stdin?.end();
    await Promise.all(workers.map((w) => (w.exitCode === null ? new Promise((r) => w.once("exit", r)) : undefined)));
    await events.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}

/** Resolves once a bare worker printed "ready"; rejects if it exits first. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`a bare BullMQ worker exited with ${code} before it was ready`)));
  });
}

/**
 * The suite's rows as a markdown table, grouped by the work: each row's result, the cluster pool's
 * speed on that work divided by this row's (above 1: the cluster is faster), and the target where
 * the cluster has one, met or not.
 */
export function clusterTable(rows: Row[], format: (x: number) => string): string {
  const picked = rows.filter((r) => r.suite === SUITE);
  const lines = ["| work | what | result | cluster / this, in speed | target |", "|---|---|---|---|---|"];
  for (const r of picked) {
    const result = Number.isNaN(r.value) ? `skipped: ${r.note}` : `${format(r.value)} ${r.unit}`;
    const ours = picked.find((x) => x.task === r.task && x.name.startsWith(`${CLUSTER}, `));
    const ratio =
      ours && !Number.isNaN(ours.value) && !Number.isNaN(r.value) ? `${(ours.value / r.value).toFixed(2)}×` : "—";
    const target = TARGETS[r.name];
    const met = target && !Number.isNaN(r.value) ? target.met(r.value, picked) : undefined;
    const verdict = target ? `${target.text}${met === undefined ? "" : met ? ": met" : ": NOT met"}` : "";
    lines.push(`| ${r.task} | ${r.name} | ${result} | ${ratio} | ${verdict} |`);
  }
  return lines.join("\n");
}
