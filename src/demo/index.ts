/**
 * `multiprocessing-ts demo`: the library's main job on this machine. The same CPU-bound work runs
 * sequentially, then on a pool in each start method, and the speed-ups are printed.
 */
import { Pool, cpuCount } from "../index.js";
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
  const expected = inputs.map(crunch);
  const sequential = performance.now() - start;
  console.log(`  sequential            ${seconds(sequential)}`);

  for (const context of ["thread", "spawn"] as const) {
    start = performance.now();
    let results: number[];
    {
      await using pool = new Pool({ processes: cores, context });
      results = await pool.map(crunch, inputs, { chunksize: 1 });
    }
    const parallel = performance.now() - start;
    if (results.some((r, i) => r !== expected[i])) throw new Error(`${context} pool returned wrong results`);
    const speedup = sequential / parallel;
    console.log(
      `  Pool(${cores}), ${context.padEnd(6)}    ${seconds(parallel)}   ${speedup.toFixed(2)}× faster (pool start-up included)`,
    );
  }
  console.log("\nSame results everywhere. Run `npx multiprocessing-ts bench` for the full benchmark suite.");
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
