/**
 * `multiprocessing-ts demo`: the library's main job on this machine. The same CPU-bound work runs
 * sequentially, then on a pool in each start method, and the speed-ups are printed. On a
 * terminal, each run shows a progress bar on stderr while it goes. With `--cluster`, the same work
 * runs once more on a cluster pool served by two worker commands and a redis-server started here
 * (backends/local-cluster.ts), all stopped again before the demo ends.
 */
import { Pool, cpuCount } from "../index.js";
import { NO_REDIS_SERVER, ProgressBar, startLocalCluster, stopOnSignal } from "../tools.js";
import { crunch } from "./tasks.js";

/** Workers of the demo's local cluster. */
const CLUSTER_WORKERS = 2;

/**
 * Runs the demo; `argv` may hold `--tasks N`, `--size N` (loop iterations per task) and
 * `--cluster`. Sets exit code 1, with a message and no stack trace, when `--cluster` finds no
 * redis-server.
 */
export async function runDemo(argv: string[]): Promise<void> {
  const option = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : fallback;
  };
  const cores = cpuCount();
  const tasks = option("--tasks", Math.max(4, cores * 2));
  const size = option("--size", 150_000_000);
  const inputs = Array.from({ length: tasks }, () => size);
  console.log(`multiprocessing-ts demo: ${tasks} CPU-bound tasks on ${cores} cores (Node.js ${process.version})\n`);

  let start = performance.now();
  // the same bar as the pools' below; drawn between tasks, since they block the event loop
  const bar = ProgressBar.open("sequential");
  const expected: number[] = [];
  for (const n of inputs) {
    expected.push(crunch(n));
    bar?.update(expected.length, tasks);
  }
  bar?.end();
  const sequential = performance.now() - start;
  console.log(`  sequential            ${seconds(sequential)}`);

  for (const context of ["thread", "spawn"] as const) {
    start = performance.now();
    let results: number[];
    {
      await using pool = new Pool({ processes: cores, context });
      results = await pool.map(crunch, inputs, { chunksize: 1, progress: `Pool(${cores}), ${context}` });
    }
    const parallel = performance.now() - start;
    if (results.some((r, i) => r !== expected[i])) throw new Error(`${context} pool returned wrong results`);
    console.log(
      `  Pool(${cores}), ${context.padEnd(6)}    ${seconds(parallel)}   ${compare(sequential, parallel, cores)}`,
    );
  }
  if (argv.includes("--cluster")) {
    const ok = await runClusterDemo(inputs, expected, sequential, cores);
    if (!ok) {
      process.exitCode = 1;
      return;
    }
  }
  console.log("\nSame results everywhere. Run `npx multiprocessing-ts bench` for the full benchmark suite.");
}

/**
 * The work once more on a cluster pool: a local redis-server and two worker commands sharing the
 * cores, started here and stopped by their pids when done, on an error, and on Ctrl-C. False when
 * there is no redis-server (the message says how to install one).
 */
async function runClusterDemo(inputs: number[], expected: number[], sequential: number, cores: number) {
  const per = Math.max(1, Math.floor(cores / CLUSTER_WORKERS));
  let cluster: Awaited<ReturnType<typeof startLocalCluster>>;
  try {
    cluster = await startLocalCluster({ workers: CLUSTER_WORKERS, processes: per });
  } catch (error) {
    const message = (error as Error).message;
    if (message !== NO_REDIS_SERVER) throw error;
    console.error(`\nmultiprocessing-ts demo --cluster: ${message}`);
    return false;
  }
  const unhook = stopOnSignal(cluster.stop, (text) => console.error(text));
  try {
    console.log(
      `\n  local cluster: redis-server (pid ${cluster.serverPid}) on ${cluster.url}, ` +
        `${CLUSTER_WORKERS} workers × ${per} threads (pids ${cluster.workerPids.join(", ")})`,
    );
    const label = `cluster, ${CLUSTER_WORKERS}×${per}`;
    const start = performance.now();
    let results: number[];
    {
      await using pool = new Pool({ cluster: cluster.url, processes: CLUSTER_WORKERS * per });
      results = await pool.map(crunch, inputs, { chunksize: 1, progress: label });
    }
    const parallel = performance.now() - start;
    if (results.some((r, i) => r !== expected[i])) throw new Error("the cluster pool returned wrong results");
    console.log(`  ${label.padEnd(20)}  ${seconds(parallel)}   ${compare(sequential, parallel, cores)}`);
  } finally {
    await cluster.stop();
    unhook();
  }
  console.log("  local cluster stopped (redis-server and workers)");
  return true;
}

/**
 * How a pool's time (`parallelMs`, its start-up included) compares with the sequential one: "N×
 * faster", "about as fast", or "N× slower" with the likely reason.
 */
export function compare(sequentialMs: number, parallelMs: number, cores: number): string {
  const ratio = sequentialMs / parallelMs;
  if (ratio >= 1.05) return `${ratio.toFixed(2)}× faster (pool start-up included)`;
  const why =
    cores < 2
      ? "this machine has one core, so the workers take turns on it"
      : "the tasks are too short for the pool's start-up to pay off (try a larger --size), or other work keeps the cores busy";
  if (ratio > 0.95) return `about as fast as sequential: ${why}`;
  return `${(1 / ratio).toFixed(2)}× slower than sequential: ${why}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
