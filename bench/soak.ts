/**
 * `npm run soak` / `multiprocessing-ts soak [--minutes M] [--cycles N]`: the long leak checks.
 *
 *   1. N (default 1000) pool create/terminate cycles per start method: file descriptors, active
 *      handles and /dev/shm entries must come back to where they started;
 *   2. M minutes (default 3) of steady work per start method on one pool (maps, calls, a queue and
 *      a lock): the parent's and the workers' heaps, sampled after each round, must not keep growing.
 *
 * Exits with code 1 and says what leaked if a check fails.
 */
import { readdirSync } from "node:fs";
import { getHeapStatistics } from "node:v8";
import { Lock, Pool, Queue } from "multiprocessing-ts";
import { identity } from "./tasks-min.js";

type Method = "thread" | "spawn";

const fds = () => readdirSync("/proc/self/fd").length;
const handles = () => process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap" && r !== "PipeWrap").length;
const segments = () => readdirSync("/dev/shm").filter((f) => f.startsWith(`mpts-${process.pid}-`)).length;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** A worker's own heap (per isolate, so it means the same for a thread and a process). */
export function workerHeap(_x?: unknown): number {
  return getHeapStatistics().used_heap_size;
}

async function cycles(method: Method, n: number): Promise<string[]> {
  const cycle = async () => {
    const pool = new Pool({ processes: 2, context: method });
    await pool.apply(identity, [1]);
    await pool.terminate();
  };
  await cycle();
  const before = { fds: fds(), handles: handles(), segments: segments() };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await cycle();
  const after = { fds: fds(), handles: handles(), segments: segments() };
  const ms = (performance.now() - t0) / n;
  console.log(
    `${method}: ${n} cycles, ${ms.toFixed(0)} ms each; fds ${before.fds} → ${after.fds}, handles ${before.handles} → ${after.handles}, /dev/shm ${before.segments} → ${after.segments}`,
  );
  const problems: string[] = [];
  if (after.fds > before.fds + 2) problems.push(`${method}: file descriptors grew from ${before.fds} to ${after.fds}`);
  if (after.handles > before.handles)
    problems.push(`${method}: active handles grew from ${before.handles} to ${after.handles}`);
  if (after.segments !== before.segments)
    problems.push(`${method}: /dev/shm entries went from ${before.segments} to ${after.segments}`);
  return problems;
}

async function steady(method: Method, ms: number): Promise<string[]> {
  await using pool = new Pool({ processes: 2, context: method });
  const queue = new Queue<number>();
  const lock = new Lock({ context: method });
  const items = Array.from({ length: 20_000 }, (_, i) => i);
  const samples: { parent: number; workers: number }[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await pool.map(identity, items);
    await Promise.all(Array.from({ length: 2_000 }, (_, i) => pool.apply(identity, [i])));
    for (let i = 0; i < 1_000; i++) await queue.put(i);
    for (let i = 0; i < 1_000; i++) await queue.get();
    for (let i = 0; i < 10_000; i++) {
      lock.acquireSync();
      lock.release();
    }
    (globalThis as { gc?: () => void }).gc?.();
    const workers = await Promise.all([pool.apply(workerHeap), pool.apply(workerHeap)]);
    samples.push({ parent: process.memoryUsage().heapUsed, workers: Math.max(...workers) });
  }
  // compare the second quarter (after warm-up) with the last: a leak keeps growing, noise does not
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  const avg = (xs: typeof samples, key: "parent" | "workers") => xs.reduce((a, s) => a + s[key], 0) / xs.length;
  const early = samples.slice(quarter, 2 * quarter);
  const late = samples.slice(-quarter);
  const problems: string[] = [];
  for (const key of ["parent", "workers"] as const) {
    const a = avg(early, key);
    const b = avg(late, key);
    console.log(`${method}: ${samples.length} rounds; ${key} heap ${mb(a)} → ${mb(b)}`);
    if (b > a * 1.5 && b - a > 20 * 2 ** 20) problems.push(`${method}: the ${key} heap grew from ${mb(a)} to ${mb(b)}`);
  }
  return problems;
}

/** Runs the soak; exits with code 1 when something leaked. */
export async function runSoak(argv: string[]): Promise<void> {
  const option = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : fallback;
  };
  const minutes = option("--minutes", 3);
  const n = option("--cycles", 1000);
  const problems: string[] = [];
  for (const method of ["thread", "spawn"] as const) problems.push(...(await cycles(method, n)));
  for (const method of ["thread", "spawn"] as const) problems.push(...(await steady(method, (minutes * 60_000) / 2)));
  if (problems.length) {
    console.log(`\nLEAKS:\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  } else console.log("\nno leaks");
}
