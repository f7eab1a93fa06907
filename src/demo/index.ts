/**
 * `multiprocessing-ts demo`: the library's main job on this machine. The same CPU-bound work runs
 * sequentially, then on a pool in each start method, and the speed-ups are printed. On a
 * terminal, each run shows a progress bar on stderr while it goes.
 */
import { Pool, cpuCount } from "../index.js";
import { ProgressBar } from "../tools.js";
import { crunch } from "./tasks.js";

/** Runs the demo; `argv` may hold `--tasks N` and `--size N` (loop iterations per task). */
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
  console.log("\nSame results everywhere. Run `npx multiprocessing-ts bench` for the full benchmark suite.");
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
