/**
 * The shared-state suites of `npm run bench`, each beside CPython's `multiprocessing` on the same
 * work (a Python script of their own, run once for every suite asked for: shared-cpython.ts):
 *
 *   manager  a child's round trips to a Manager dict: sequential awaited set/get, and pipelined sets
 *   locks    uncontended Lock acquire+release in one process; 4 processes incrementing a Value
 *   queue    a child puts numbers, the parent gets them: Queue (awaited and batched puts), SimpleQueue;
 *            round trips through two Queues and a child that echoes
 *
 * Ours runs in both start methods; the manager's server and every child use the same one. The
 * locks and queue suites also run in the spawn start method without the native addon (the
 * fallback, where every primitive is held by an agent server): in a child Node process started with
 * `MULTIPROCESSING_TS_NO_NATIVE=1`, since the addon is loaded or not once per process.
 */
import { spawn } from "node:child_process";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Barrier, Lock, Manager, Process, Queue, RawArray, SharedMemory, SimpleQueue, Value } from "multiprocessing-ts";
import type { Row } from "./row.js";
import {
  type PutMode,
  contendedIncrements,
  managerRoundTrips,
  now,
  queueEcho,
  queueProducer,
  queueWarmUpCount,
} from "./shared-tasks.js";

export type Emit = (row: Row) => void;

/** Counts of the shared-state suites. */
export interface SharedCounts {
  /** Manager calls per round (sequential, then as many pipelined). */
  manager: number;
  /** Uncontended acquire+release pairs per round. */
  lock: number;
  /** Increments by each of the contending processes per round. */
  increments: number;
  /** Items per round when the child awaits each put (Queue and SimpleQueue). */
  queueAwaited: number;
  /** Items per round when the child puts in batches (ours), and for CPython's queues. */
  queue: number;
  /** Queue round trips (parent to child and back) per round. */
  roundTrips: number;
  /** Measured rounds (after one warm-up); the median is reported. */
  runs: number;
}

const BATCH = 1000;
/** A child that takes longer than this is reported as hung (and killed). */
const HANG_MS = 120_000;
/** The processes (or threads) incrementing one Value in the contended task. */
export const CONTENDERS = 4;
type Context = "thread" | "spawn";
const contexts: readonly Context[] = ["thread", "spawn"];
const THREAD = "multiprocessing-ts (thread)";
const SPAWN = "multiprocessing-ts (spawn)";
const FALLBACK = "multiprocessing-ts (spawn, fallback)";
/** Ours in `context`: the spawn start method is the fallback when this process has no addon. */
const ours = (context: Context) => (context === "thread" ? THREAD : hasNative() ? SPAWN : FALLBACK);
/**
 * The start methods of the locks and queue suites at their full counts: without the addon, only
 * "thread" (the spawn rows are then the fallback's, at its counts: see fallbackRows).
 */
const measured = (): readonly Context[] => (hasNative() ? contexts : ["thread"]);
export const CPYTHON = "CPython";

let native: boolean | undefined;
/**
 * Whether the native addon loaded in this process, asked through the library's public API (the
 * bench ships in the package, which holds the bundled library only): `SharedMemory` needs the addon.
 */
function hasNative(): boolean {
  if (native === undefined) {
    try {
      const probe = new SharedMemory({ create: true, size: 8 });
      probe.close();
      probe.unlink();
      native = true;
    } catch {
      native = false;
    }
  }
  return native;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function failed(suite: string, name: string, task: string, unit: string, error: unknown): Row {
  return { suite, name, task, value: Number.NaN, unit, note: (error as Error).message ?? String(error) };
}

/** Joins `p`, killing it and throwing after HANG_MS; throws when it did not exit with 0. */
async function joinOrFail(p: Process, what: string): Promise<void> {
  await p.join(HANG_MS);
  if (p.isAlive()) {
    p.kill();
    throw new Error(`${what} still running after ${HANG_MS / 1000} s: killed`);
  }
  if (p.exitcode !== 0) throw new Error(`${what} exited with code ${p.exitcode}`);
}

// ---------------------------------------------------------------------------------------------
// manager

export async function managerSuite(emit: Emit, counts: SharedCounts): Promise<void> {
  for (const context of contexts) {
    const name = ours(context);
    let manager: Manager | undefined;
    try {
      manager = await Manager.start({ context });
      const d = manager.dict<string, number>();
      const child = new Process({
        target: managerRoundTrips,
        args: [d, counts.manager, counts.runs, BATCH],
        context,
      }).start();
      await joinOrFail(child, "the child doing the round trips");
      const sequential = await d.get("sequential");
      const pipelined = await d.get("pipelined");
      emit({ suite: "manager", name, task: "sequential set/get, each awaited", value: sequential!, unit: "calls/s" });
      emit({
        suite: "manager",
        name,
        task: `pipelined sets, ${BATCH} at a time`,
        value: pipelined!,
        unit: "calls/s",
        vs: "sequential set/get, each awaited",
      });
    } catch (error) {
      emit(failed("manager", name, "sequential set/get, each awaited", "calls/s", error));
    } finally {
      await manager?.shutdown();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// locks

const UNCONTENDED = "uncontended acquire+release";
export const PY_UNCONTENDED = "uncontended lock.acquire(); lock.release()";
export const CONTENDED = `${CONTENDERS} children incrementing a Value under its lock`;

async function rate(runs: number, n: number, loop: () => Promise<void> | void): Promise<number> {
  const xs: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    await loop();
    if (r > 0) xs.push(n / ((performance.now() - t0) / 1000));
  }
  return median(xs);
}

/** The time of one operation: in ns, or in µs from 10 µs up. */
export function perOp(perSecond: number, what: string): string {
  const ns = 1e9 / perSecond;
  return ns >= 10_000 ? `${(ns / 1000).toFixed(0)} µs ${what}` : `${ns.toFixed(0)} ns ${what}`;
}
export const nsNote = (perSecond: number) => perOp(perSecond, "a pair");

export async function locksSuite(emit: Emit, counts: SharedCounts, only = measured()): Promise<void> {
  const n = counts.lock;
  for (const context of only) {
    const lock = new Lock({ context });
    const sync = await rate(counts.runs, n, () => {
      for (let i = 0; i < n; i++) {
        lock.acquireSync();
        lock.release();
      }
    });
    emit({
      suite: "locks",
      name: ours(context),
      task: `${UNCONTENDED}: acquireSync()`,
      value: sync,
      unit: "pairs/s",
      note: nsNote(sync),
      vs: PY_UNCONTENDED,
    });
    const nAsync = Math.max(1, n >> 2);
    const async = await rate(counts.runs, nAsync, async () => {
      for (let i = 0; i < nAsync; i++) {
        await lock.acquire();
        lock.release();
      }
    });
    emit({
      suite: "locks",
      name: ours(context),
      task: `${UNCONTENDED}: await acquire()`,
      value: async,
      unit: "pairs/s",
      note: nsNote(async),
      vs: PY_UNCONTENDED,
    });
  }
  for (const context of only) {
    try {
      const { value, note } = await contended(context, counts.increments, counts.runs);
      emit({ suite: "locks", name: ours(context), task: CONTENDED, value, unit: "increments/s", note });
    } catch (error) {
      emit(failed("locks", ours(context), CONTENDED, "increments/s", error));
    }
  }
}

/**
 * CONTENDERS children add 1 `times` times each under the Value's lock, in rounds started by a
 * barrier; increments/s over the span from the first start to the last end.
 */
async function contended(context: Context, times: number, runs: number): Promise<{ value: number; note: string }> {
  const counter = new Value("i", 0, { context });
  const barrier = new Barrier(CONTENDERS + 1, { context });
  const stamps = RawArray("d", 2 * CONTENDERS, { context });
  const slots = Array.from({ length: CONTENDERS }, (_, slot) => slot);
  const total = CONTENDERS * times;
  const children = slots.map((slot) =>
    new Process({
      target: contendedIncrements,
      args: [counter, times, runs + 1, barrier, stamps, slot],
      context,
    }).start(),
  );
  const rates: number[] = [];
  const wrong: number[] = [];
  try {
    for (let r = 0; r <= runs; r++) {
      await barrier.wait(HANG_MS);
      await barrier.wait(HANG_MS);
      const count = counter.value;
      if (count !== total) wrong.push(count);
      counter.value = 0;
      const span =
        Math.max(...slots.map((slot) => stamps[2 * slot + 1]!)) - Math.min(...slots.map((slot) => stamps[2 * slot]!));
      if (r > 0) rates.push(total / (span / 1000));
    }
    for (const [i, child] of children.entries()) await joinOrFail(child, `contender ${i}`);
  } catch (error) {
    // the others may be in the middle of a round: stop them rather than wait for them
    for (const child of children) if (child.isAlive()) child.kill();
    throw error;
  }
  const note = wrong.length
    ? `WRONG COUNT: ${wrong.join(", ")} instead of ${total}`
    : `${CONTENDERS} × ${times}, count exact in every round`;
  return { value: median(rates), note };
}

// ---------------------------------------------------------------------------------------------
// queue

export const ROUND_TRIP = "Queue round trip: parent puts, child gets and puts back, parent gets";

export async function queueSuite(emit: Emit, counts: SharedCounts, only = measured()): Promise<void> {
  for (const context of only) {
    const plans: [Queue<number>, PutMode, number, string, string][] = [
      [new Queue<number>(0, { context }), "awaited", counts.queueAwaited, "Queue: child awaits each put", "Queue"],
      [new Queue<number>(0, { context }), "batched", counts.queue, `Queue: child puts ${BATCH} at a time`, "Queue"],
      [
        new SimpleQueue<number>({ context }),
        "awaited",
        counts.queueAwaited,
        "SimpleQueue: child awaits each put",
        "SimpleQueue",
      ],
    ];
    const go = new SimpleQueue<number>({ context });
    let child: Process | undefined;
    try {
      child = new Process({
        target: queueProducer,
        args: [plans.map(([q, mode, n]) => [q, mode, n]), go, counts.runs + 1, BATCH],
        context,
      }).start();
      for (const [queue, , count, task, vs] of plans) {
        const rates: number[] = [];
        for (let r = 0; r <= counts.runs; r++) {
          const n = r === 0 ? queueWarmUpCount(count) : count;
          await go.put(r);
          const t0 = await queue.get({ timeout: HANG_MS });
          let sum = 0;
          for (let i = 0; i < n; i++) sum += await queue.get({ timeout: HANG_MS });
          const elapsed = now() - t0;
          if (sum !== (n * (n - 1)) / 2) throw new Error(`${task}: the items got do not add up`);
          if (r > 0) rates.push(n / (elapsed / 1000));
        }
        emit({ suite: "queue", name: ours(context), task, value: median(rates), unit: "items/s", vs });
      }
      await joinOrFail(child, "the producer");
    } catch (error) {
      child?.kill();
      emit(failed("queue", ours(context), "Queue", "items/s", error));
    }
    try {
      const value = await roundTrips(context, counts.roundTrips, counts.runs);
      emit({
        suite: "queue",
        name: ours(context),
        task: ROUND_TRIP,
        value,
        unit: "round trips/s",
        note: perOp(value, "each"),
      });
    } catch (error) {
      emit(failed("queue", ours(context), ROUND_TRIP, "round trips/s", error));
    }
  }
}

/**
 * Round trips through two queues: the parent puts a number on one, a child gets it and puts it on
 * the other, the parent gets it back; each put and get awaited before the next. Round trips/s,
 * timed in the parent; the warm-up round is a full one.
 */
async function roundTrips(context: Context, n: number, runs: number): Promise<number> {
  const there = new Queue<number>(0, { context });
  const back = new Queue<number>(0, { context });
  const child = new Process({ target: queueEcho, args: [there, back], context }).start();
  const rates: number[] = [];
  try {
    for (let r = 0; r <= runs; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        await there.put(i);
        const x = await back.get({ timeout: HANG_MS });
        if (x !== i) throw new Error(`round trip ${i} came back as ${x}`);
      }
      if (r > 0) rates.push(n / ((performance.now() - t0) / 1000));
    }
    await there.put(-1);
    await joinOrFail(child, "the echoing child");
  } catch (error) {
    child.kill();
    throw error;
  }
  return median(rates);
}

// ---------------------------------------------------------------------------------------------
// The fallback, in a child Node process without the addon

/** The suites measured in the fallback too. */
export const fallbackSuites: readonly string[] = ["locks", "queue"];

/** The argument of `bench` that runs a suite in the spawn start method only and prints its rows as JSON. */
export const FALLBACK_FLAG = "--fallback-rows";

/** The rows of `suite` in the spawn start method, which is the fallback in a process without the addon. */
async function spawnRows(suite: string, counts: SharedCounts): Promise<Row[]> {
  const rows: Row[] = [];
  const emit = (row: Row) => void rows.push(row);
  if (suite === "locks") await locksSuite(emit, counts, ["spawn"]);
  else if (suite === "queue") await queueSuite(emit, counts, ["spawn"]);
  else throw new Error(`no fallback rows for suite ${suite}`);
  return rows;
}

/**
 * The rows of `suite` without the addon, with `counts`: measured in a child Node process started
 * with `MULTIPROCESSING_TS_NO_NATIVE=1` (`bench --fallback-rows <suite> <counts as JSON>`), or here
 * when this process has no addon itself.
 */
export async function fallbackRows(suite: string, counts: SharedCounts): Promise<Row[]> {
  const first = suite === "locks" ? `${UNCONTENDED}: acquireSync()` : "Queue: child awaits each put";
  const unit = suite === "locks" ? "pairs/s" : "items/s";
  if (!hasNative()) return spawnRows(suite, counts);
  // dist/bench/ beside dist/cli.js when built; bench/ beside src/ under tsx
  const cli = fileURLToPath(
    new URL(extname(import.meta.url) === ".ts" ? "../src/cli.ts" : "../cli.js", import.meta.url),
  );
  const args = [...process.execArgv, cli, "bench", FALLBACK_FLAG, suite, JSON.stringify(counts)];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, MULTIPROCESSING_TS_NO_NATIVE: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const timer = setTimeout(() => child.kill(), 5 * HANG_MS);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    });
    if (code !== 0) throw new Error(`the fallback run exited with ${code ?? "a signal"}`);
    return JSON.parse(out.trim().split("\n").pop()!) as Row[];
  } catch (error) {
    return [failed(suite, FALLBACK, first, unit, error)];
  } finally {
    clearTimeout(timer);
  }
}

/** In the child of `fallbackRows`: runs `suite` in the spawn start method and prints its rows. */
export async function printFallbackRows(suite: string, counts: SharedCounts): Promise<void> {
  if (hasNative()) throw new Error("the native addon loaded: MULTIPROCESSING_TS_NO_NATIVE=1 is not set");
  console.log(JSON.stringify(await spawnRows(suite, counts)));
}

// ---------------------------------------------------------------------------------------------
// Output

export function formatValue(row: Row | undefined, format: (x: number) => string): string {
  if (!row) return "—";
  if (Number.isNaN(row.value)) return `skipped: ${row.note}`;
  return `${format(row.value)} ${row.unit}${row.note ? ` (${row.note})` : ""}`;
}

/**
 * A table of one shared-state suite: one line per task, ours in each start method (and in the
 * fallback, when the suite has rows of it) beside CPython, and the ratios ours / CPython (against
 * the CPython task named by the row's `vs`, when it has no task of its own with the same name).
 */
export function versusTable(rows: Row[], suite: string, format: (x: number) => string): string {
  const picked = rows.filter((r) => r.suite === suite);
  const tasks = [...new Set(picked.filter((r) => r.name !== CPYTHON).map((r) => r.task!))];
  const names = [THREAD, SPAWN, FALLBACK].filter((name, i) => i < 2 || picked.some((r) => r.name === name));
  const columns = names.map((name) => name.slice("multiprocessing-ts ".length));
  const short = names.map((name) => (name === FALLBACK ? "fallback" : name.slice("multiprocessing-ts (".length, -1)));
  const lines = [
    `| what | ${columns.map((c) => `ours ${c}`).join(" | ")} | CPython (spawn) | ours / CPython (${short.join(", ")}) |`,
    `|---|${names.map(() => "---|").join("")}---|---|`,
  ];
  for (const task of tasks) {
    const of = (name: string) => picked.find((r) => r.name === name && r.task === task);
    const cells = names.map(of);
    const vs = cells.find((r) => r?.vs)?.vs;
    const own = of(CPYTHON);
    const py = own ?? picked.find((r) => r.name === CPYTHON && r.task === vs);
    const ratio = (r: Row | undefined) => {
      if (!r || !py || Number.isNaN(r.value)) return "—";
      const x = r.value / py.value;
      return `${x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)}×`;
    };
    const pyCell = own ? formatValue(own, format) : py ? `${formatValue(py, format)} [${py.task}]` : "—";
    lines.push(
      `| ${task} | ${cells.map((r) => formatValue(r, format)).join(" | ")} | ${pyCell} | ${cells.map(ratio).join(", ")} |`,
    );
  }
  return lines.join("\n");
}
