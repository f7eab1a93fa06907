/**
 * `npm run bench` / `multiprocessing-ts bench`: this library and its peers (piscina, tinypool,
 * workerpool, bare hand-written pools, CPython's multiprocessing when python3 is present) on the
 * same work, in one run, with ratios: every row is printed in every run, and a contender that is
 * skipped or fails says why on its row. Options: `--quick` (smaller counts), `--scale F` (every
 * count times F, to check at small sizes that the suites run), `--only a,b,...`
 * (suites: calls, map, cpu, workloads (real work: workloads.ts), startup, transfer, start, the
 * shared-state suites of shared.ts: manager, locks, queue, and cluster (cluster.ts: a redis-server
 * and two worker commands on this machine, skipped without redis-server)), `--write` (also write BENCHMARKS.md:
 * the sections of the suites that ran are regenerated, the others and everything after
 * `<!-- end of generated figures -->` are kept).
 *
 * Each figure is the median of several runs after a warm-up; every pool has 2 workers. Peers are
 * dev dependencies: a missing one is reported as skipped.
 */
import { fork, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { Worker } from "node:worker_threads";
import { Pool } from "multiprocessing-ts";
import { clusterSuite, clusterTable } from "./cluster.js";
import { formatStartRows, runProcessStartBench } from "./process-start.js";
import {
  FALLBACK_FLAG,
  type SharedCounts,
  fallbackRows,
  fallbackSuites,
  locksSuite,
  managerSuite,
  pythonRows,
  printFallbackRows,
  pythonFailure,
  pythonShared,
  queueSuite,
  runPython,
  versusTable,
} from "./shared.js";
import { WORKERS, here, optional, startPiscina, startWorkerpool } from "./peers.js";
import { BenchStatus } from "./status.js";
import { cpuLoop, identity } from "./tasks-min.js";
import { workloadsSuite, workloadsTable } from "./workloads.js";
import type { Row } from "./row.js";

export type { Row };

/** The progress line of the run under way (every suite reports through it). */
let status = new BenchStatus([]);

type Measure = () => Promise<number>;

async function median(runs: number, measure: Measure): Promise<number> {
  await measure(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await measure());
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

// ---------------------------------------------------------------------------------------------
// Pools under test, each behind the same small adapter.

interface Adapter {
  name: string;
  call(x: number): Promise<unknown>;
  mapAll?(xs: number[]): Promise<unknown[]>;
  close(): Promise<void>;
}

type Factory = { name: string; make(): Promise<Adapter> };

/** Joins chunk results the fast way (Array.prototype.flat is several times slower), for every contender. */
function flatten(parts: unknown[][]): unknown[] {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Array(n);
  let k = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++) out[k++] = p[i];
  return out;
}

function ours(context: "thread" | "spawn"): Factory {
  return {
    name: `multiprocessing-ts (${context})`,
    async make() {
      const pool = new Pool({ processes: WORKERS, context });
      return {
        name: this.name,
        call: (x) => pool.apply(identity, [x]),
        mapAll: (xs) => pool.map(identity, xs),
        close: () => pool.terminate(),
      };
    },
  };
}

function piscina(): Factory {
  return {
    name: "piscina",
    async make() {
      const pool = await startPiscina();
      return {
        name: this.name,
        call: (x) => pool.run(x, { name: "identity" }),
        close: () => pool.destroy(),
      };
    },
  };
}

function tinypool(runtime: "worker_threads" | "child_process"): Factory {
  return {
    name: `tinypool (${runtime === "worker_threads" ? "thread" : "process"})`,
    async make() {
      const mod = await optional<{ default: new (o: object) => any }>("tinypool");
      if (!mod) throw new Error("not installed");
      const pool = new mod.default({
        filename: here("./workers/peer-task.js"),
        minThreads: WORKERS,
        maxThreads: WORKERS,
        runtime,
      });
      return { name: this.name, call: (x) => pool.run(x, { name: "identity" }), close: () => pool.destroy() };
    },
  };
}

function workerpool(workerType: "thread" | "process"): Factory {
  return {
    name: `workerpool (${workerType})`,
    async make() {
      const pool = await startWorkerpool(workerType);
      return {
        name: this.name,
        call: (x) => pool.exec("identity", [x]),
        mapAll: async (xs) => {
          const size = Math.ceil(xs.length / (4 * WORKERS));
          const parts: Promise<unknown[]>[] = [];
          for (let i = 0; i < xs.length; i += size) parts.push(pool.exec("mapChunk", [xs.slice(i, i + size)]));
          return flatten(await Promise.all(parts));
        },
        close: async () => void (await pool.terminate()),
      };
    },
  };
}

/** A bare pool: one message per task to the least busy worker; chunks for map. */
function bareThreads(): Factory {
  return {
    name: "bare worker_threads pool",
    async make() {
      const workers = Array.from({ length: WORKERS }, () => new Worker(here("./workers/bare-thread.js")));
      const pending = new Map<number, (v: unknown) => void>();
      const busy = workers.map(() => 0);
      workers.forEach((w, i) => {
        w.on("message", (m: { id: number; x?: unknown; xs?: unknown[] }) => {
          busy[i]!--;
          pending.get(m.id)!(m.xs ?? m.x);
          pending.delete(m.id);
        });
      });
      let next = 0;
      const send = (message: object) =>
        new Promise<unknown>((resolve) => {
          const id = next++;
          pending.set(id, resolve);
          const i = busy[0]! <= busy[1]! ? 0 : 1;
          busy[i]!++;
          workers[i]!.postMessage({ id, ...message });
        });
      return {
        name: this.name,
        call: (x) => send({ x }),
        mapAll: async (xs) => {
          const size = Math.ceil(xs.length / (4 * WORKERS));
          const parts: Promise<unknown>[] = [];
          for (let i = 0; i < xs.length; i += size) parts.push(send({ xs: xs.slice(i, i + size) }));
          return flatten((await Promise.all(parts)) as unknown[][]);
        },
        close: async () => void (await Promise.all(workers.map((w) => w.terminate()))),
      };
    },
  };
}

function bareForks(): Factory {
  return {
    name: "bare child_process.fork pool",
    async make() {
      const children = Array.from({ length: WORKERS }, () =>
        fork(here("./workers/bare-fork.js"), [], { serialization: "json", execArgv: [] }),
      );
      const pending = new Map<number, (v: unknown) => void>();
      for (const c of children) c.on("message", (m: { id: number; x: unknown }) => pending.get(m.id)!(m.x));
      let next = 0;
      return {
        name: this.name,
        call: (x) =>
          new Promise((resolve) => {
            const id = next++;
            pending.set(id, (v) => {
              pending.delete(id);
              resolve(v);
            });
            children[id % WORKERS]!.send({ id, x });
          }),
        close: async () => {
          for (const c of children) c.kill();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CPython, measured by a script of its own on the same work.

const pythonScript = `
import json, multiprocessing as mp, sys, time
def inc(x): return x + 1
def main():
    n_calls, n_map = int(sys.argv[1]), int(sys.argv[2])
    out = {}
    t0 = time.perf_counter(); p = mp.get_context("spawn").Pool(2); p.apply(inc, (1,)); out["startup"] = time.perf_counter() - t0
    for _ in range(2):
        t0 = time.perf_counter(); [r.get() for r in [p.apply_async(inc, (x,)) for x in range(n_calls)]]; out["calls"] = n_calls / (time.perf_counter() - t0)
        xs = list(range(n_map)); t0 = time.perf_counter(); p.map(inc, xs); out["map"] = n_map / (time.perf_counter() - t0)
    p.terminate(); p.join()
    print(json.dumps(out))
if __name__ == "__main__": main()
`;

type PythonCalls = { calls: number; map: number; startup: number };

/** CPython's figures, or why there are none (then every CPython row says so). */
function python(nCalls: number, nMap: number): { result?: PythonCalls; error?: string } {
  const result = runPython(pythonScript, [String(nCalls), String(nMap)]);
  const error = pythonFailure(result);
  if (error) return { error };
  try {
    return { result: JSON.parse(result.stdout.trim().split("\n").pop()!) };
  } catch {
    return { error: "CPython's script printed no figures" };
  }
}

/** A CPython row: its figure, or the reason it has none. */
function pythonRow(
  suite: string,
  name: string,
  py: ReturnType<typeof python>,
  value: (r: PythonCalls) => number,
  unit: string,
): Row {
  return py.result
    ? { suite, name, value: value(py.result), unit }
    : { suite, name, value: Number.NaN, unit, note: py.error };
}

// ---------------------------------------------------------------------------------------------
// Suites

async function calls(rows: Row[], factories: Factory[], n: number, runs: number): Promise<void> {
  for (const f of factories) {
    status.at("calls", f.name);
    try {
      const pool = await f.make();
      await pool.call(0);
      const perSecond = await median(runs, async () => {
        const t0 = performance.now();
        const all: Promise<unknown>[] = [];
        for (let i = 0; i < n; i++) all.push(pool.call(i));
        await Promise.all(all);
        return n / ((performance.now() - t0) / 1000);
      });
      await pool.close();
      rows.push({ suite: "calls", name: f.name, value: perSecond, unit: "calls/s" });
    } catch (error) {
      rows.push({ suite: "calls", name: f.name, value: Number.NaN, unit: "calls/s", note: (error as Error).message });
    }
    report(rows.at(-1)!);
  }
}

async function mapSuite(rows: Row[], factories: Factory[], n: number, runs: number): Promise<void> {
  const xs = Array.from({ length: n }, (_, i) => i);
  for (const f of factories) {
    status.at("map", f.name);
    try {
      const pool = await f.make();
      if (!pool.mapAll) {
        await pool.close();
        throw new Error("it has no call for a whole list");
      }
      const perSecond = await median(runs, async () => {
        const t0 = performance.now();
        const out = await pool.mapAll!(xs);
        if (out.length !== n) throw new Error("wrong length");
        return n / ((performance.now() - t0) / 1000);
      });
      await pool.close();
      rows.push({ suite: "map", name: f.name, value: perSecond, unit: "items/s" });
    } catch (error) {
      rows.push({ suite: "map", name: f.name, value: Number.NaN, unit: "items/s", note: (error as Error).message });
    }
    report(rows.at(-1)!);
  }
}

async function cpuSuite(rows: Row[], size: number): Promise<void> {
  const inputs = Array.from({ length: 8 }, () => size);
  status.at("cpu", "sequential");
  const t0 = performance.now();
  for (const n of inputs) cpuLoop(n);
  const sequential = performance.now() - t0;
  const measure = async (name: string, run: () => Promise<number>) => {
    status.at("cpu", name);
    try {
      rows.push({ suite: "cpu", name, value: sequential / (await run()), unit: "× speed-up" });
    } catch (error) {
      rows.push({ suite: "cpu", name, value: Number.NaN, unit: "× speed-up", note: (error as Error).message });
    }
    report(rows.at(-1)!);
  };
  for (const context of ["thread", "spawn"] as const) {
    await measure(`multiprocessing-ts (${context})`, async () => {
      const pool = new Pool({ processes: WORKERS, context });
      try {
        await pool.apply(cpuLoop, [1]); // started and warm, as the peers' pools below
        const t0 = performance.now();
        await pool.map(cpuLoop, inputs, { chunksize: 1 });
        return performance.now() - t0;
      } finally {
        await pool.terminate();
      }
    });
  }
  await measure("piscina", async () => {
    const pool = await startPiscina();
    try {
      await pool.run(1, { name: "cpuLoop" });
      const t0 = performance.now();
      await Promise.all(inputs.map((n) => pool.run(n, { name: "cpuLoop" })));
      return performance.now() - t0;
    } finally {
      await pool.destroy();
    }
  });
}

async function startupSuite(rows: Row[], factories: Factory[], runs: number): Promise<void> {
  for (const f of factories) {
    status.at("startup", f.name);
    try {
      const ms = await median(runs, async () => {
        const t0 = performance.now();
        const pool = await f.make();
        await pool.call(1);
        const elapsed = performance.now() - t0;
        await pool.close();
        return elapsed;
      });
      rows.push({ suite: "startup", name: f.name, value: ms, unit: "ms" });
    } catch (error) {
      rows.push({ suite: "startup", name: f.name, value: Number.NaN, unit: "ms", note: (error as Error).message });
    }
    report(rows.at(-1)!);
  }
}

async function transferSuite(rows: Row[], runs: number): Promise<void> {
  const data = new Float64Array((10 * 1024 * 1024) / 8).fill(1.5);
  for (const context of ["thread", "spawn"] as const) {
    status.at("transfer", `multiprocessing-ts (${context})`);
    const pool = new Pool({ processes: 1, context });
    let kept = true;
    const ms = await median(runs, async () => {
      const t0 = performance.now();
      const back = (await pool.apply(identity, [data])) as unknown;
      kept &&= back instanceof Float64Array && back.length === data.length;
      return performance.now() - t0;
    });
    await pool.terminate();
    rows.push({
      suite: "transfer",
      name: `multiprocessing-ts (${context}), copied`,
      value: ms,
      unit: "ms",
      note: kept ? "Float64Array kept its type" : "type lost",
    });
    report(rows.at(-1)!);
  }
}

function report(row: Row): void {
  const value = row.wrong
    ? `WRONG RESULT (${row.note})`
    : Number.isNaN(row.value)
      ? `skipped (${row.note})`
      : `${format(row.value)} ${row.unit}${row.note ? ` (${row.note})` : ""}`;
  const name = row.task ? `${row.name}, ${row.task}` : row.name;
  status.print(`  ${row.suite.padEnd(9)} ${name.padEnd(34)} ${value}`);
}

function format(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return x >= 100 ? x.toFixed(0) : x.toFixed(2);
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const py = spawnSync("python3", ["--version"], { encoding: "utf8" });
  return `${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform}; Node.js ${process.version}${py.status === 0 ? `; ${py.stdout.trim()}` : ""}; ${new Date().toISOString().slice(0, 10)}`;
}

/** Rows of processes (not threads) compare with ours in the spawn method. */
const processRow = (name: string) => /\((spawn|process)\)|fork|CPython/.test(name);

/**
 * A suite's rows as a markdown table. With `compare`, each row's ratio to ours in the same kind
 * (threads with threads, processes with processes), as speeds: above 1, ours is faster.
 */
function table(rows: Row[], suite: string, compare = false): string {
  const picked = rows.filter((r) => r.suite === suite);
  const lines = [
    `| what | result |${compare ? " ours (same kind) / this, in speed |" : ""}`,
    `|---|---|${compare ? "---|" : ""}`,
  ];
  for (const r of picked) {
    const result = Number.isNaN(r.value)
      ? `skipped: ${r.note}`
      : `${format(r.value)} ${r.unit}${r.note ? ` (${r.note})` : ""}`;
    if (!compare) {
      lines.push(`| ${r.name} | ${result} |`);
      continue;
    }
    const ref = picked.find((x) => x.name === `multiprocessing-ts (${processRow(r.name) ? "spawn" : "thread"})`);
    let ratio = "—";
    if (r === ref) ratio = "1.00×";
    else if (ref && !Number.isNaN(ref.value) && !Number.isNaN(r.value)) {
      // a time (ms) is the inverse of a speed
      ratio = `${(r.unit === "ms" ? r.value / ref.value : ref.value / r.value).toFixed(2)}×`;
    }
    lines.push(`| ${r.name} | ${result} | ${ratio} |`);
  }
  return lines.join("\n");
}

/** The suites of this file and of shared.ts, in the order they run. */
const SUITES = [
  "calls",
  "map",
  "cpu",
  "workloads",
  "startup",
  "transfer",
  "start",
  "manager",
  "locks",
  "queue",
  "cluster",
];

/** Reads `--only`, `--scale` and `--quick`; throws a message for the command line on bad values. */
function parseOptions(argv: string[]): { only?: Set<string>; scale: number; quick: boolean } {
  const value = (flag: string) => {
    const at = argv.indexOf(flag);
    return at < 0 ? undefined : (argv[at + 1] ?? "");
  };
  const onlyText = value("--only");
  const only = onlyText === undefined ? undefined : new Set(onlyText.split(","));
  for (const suite of only ?? []) {
    if (!SUITES.includes(suite)) {
      throw new Error(`unknown suite ${JSON.stringify(suite)} in --only: the suites are ${SUITES.join(", ")}`);
    }
  }
  const scaleText = value("--scale");
  const scale = scaleText === undefined ? 1 : Number(scaleText);
  if (!(scale > 0 && Number.isFinite(scale))) {
    throw new Error(
      `--scale must be a positive number, e.g. --scale 0.1 (got ${scaleText ? JSON.stringify(scaleText) : "nothing"})`,
    );
  }
  return { only, scale, quick: argv.includes("--quick") };
}

/** Runs the suites named in `argv` (all by default) and prints the results. */
export async function runBench(argv: string[]): Promise<void> {
  const fallbackAt = argv.indexOf(FALLBACK_FLAG);
  if (fallbackAt >= 0) return printFallbackRows(argv[fallbackAt + 1]!, JSON.parse(argv[fallbackAt + 2]!));
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(argv);
  } catch (error) {
    console.error(`multiprocessing-ts bench: ${(error as Error).message}`);
    process.exitCode = 2;
    return;
  }
  console.log(`multiprocessing-ts bench — ${machine()}\n`);
  status = new BenchStatus(SUITES.filter((suite) => !options.only || options.only.has(suite)));
  try {
    await runSuites(argv, options);
  } finally {
    status.end();
  }
}

/** The suites `options.only` picks (all by default), their rows printed as they come. */
async function runSuites(argv: string[], options: ReturnType<typeof parseOptions>): Promise<void> {
  const { only, scale, quick } = options;
  const wants = (suite: string) => !only || only.has(suite);
  /** A count of the full run, times --scale, at least 1. */
  const scaled = (n: number) => Math.max(1, Math.round(n * scale));
  const runs = quick ? 1 : 3;
  const nCalls = scaled(quick ? 20_000 : 100_000);
  const nMap = scaled(quick ? 200_000 : 1_000_000);
  const rows: Row[] = [];
  const threadPeers = [ours("thread"), piscina(), tinypool("worker_threads"), workerpool("thread"), bareThreads()];
  const processPeers = [ours("spawn"), tinypool("child_process"), workerpool("process"), bareForks()];
  const pySuite = ["calls", "map", "startup"].find(wants);
  if (pySuite) status.at(pySuite, "CPython (its figures for calls, map and startup)");
  const py = pySuite ? python(nCalls, nMap) : { error: "not run" };
  const emit = (row: Row) => {
    rows.push(row);
    report(row);
  };
  const printTable = (suite: string, compare = false) => status.print(`\n${table(rows, suite, compare)}\n`);
  if (wants("calls")) {
    await calls(rows, [...threadPeers, ...processPeers], nCalls, runs);
    emit(pythonRow("calls", "CPython Pool(2).apply_async", py, (r) => r.calls, "calls/s"));
    printTable("calls", true);
  }
  if (wants("map")) {
    await mapSuite(rows, [ours("thread"), ours("spawn"), workerpool("thread"), bareThreads()], nMap, runs);
    emit(pythonRow("map", "CPython Pool(2).map", py, (r) => r.map, "items/s"));
    printTable("map", true);
  }
  if (wants("cpu")) {
    await cpuSuite(rows, scaled(quick ? 20_000_000 : 60_000_000));
    printTable("cpu", true);
  }
  if (wants("workloads")) {
    const sizes = { buffers: scaled(quick ? 500 : 2_000), documents: scaled(quick ? 50 : 200), runs };
    await workloadsSuite(emit, sizes, (row) => status.at("workloads", row));
    status.print(`\n${workloadsTable(rows, format)}\n`);
  }
  if (wants("startup")) {
    await startupSuite(rows, [...threadPeers, ...processPeers], runs);
    emit(pythonRow("startup", "CPython Pool(2) spawn", py, (r) => r.startup * 1000, "ms"));
    printTable("startup", true);
  }
  if (wants("transfer")) {
    await transferSuite(rows, runs);
    printTable("transfer");
  }
  let start = "";
  if (wants("start")) {
    status.at("start", "Process start-up against raw fork / Worker");
    start = formatStartRows(await runProcessStartBench(quick ? 3 : 8));
    status.print(`\n${start}`);
  }
  /** Every count of `c` times --scale, but its rounds; a count of 0 (not measured) stays 0. */
  const scaledCounts = (c: SharedCounts): SharedCounts => {
    const out = { ...c };
    for (const key of Object.keys(out) as (keyof SharedCounts)[]) {
      if (key !== "runs" && out[key] > 0) out[key] = scaled(out[key]);
    }
    return out;
  };
  const counts: SharedCounts = scaledCounts(
    quick
      ? {
          manager: 1_000,
          lock: 200_000,
          increments: 20_000,
          queueAwaited: 10_000,
          queue: 10_000,
          roundTrips: 1_000,
          runs: 1,
        }
      : {
          manager: 4_000,
          lock: 1_000_000,
          increments: 100_000,
          queueAwaited: 100_000,
          queue: 100_000,
          roundTrips: 5_000,
          runs: 3,
        },
  );
  // without the addon every operation is a message to a broker (~100 µs): smaller counts
  const fallbackCounts: SharedCounts = scaledCounts(
    quick
      ? { manager: 0, lock: 1_000, increments: 50, queueAwaited: 500, queue: 500, roundTrips: 200, runs: 1 }
      : { manager: 0, lock: 4_000, increments: 100, queueAwaited: 5_000, queue: 5_000, roundTrips: 2_000, runs: 3 },
  );
  const sharedSuites = (["manager", "locks", "queue"] as const).filter((suite) => wants(suite));
  if (sharedSuites.length) {
    let emitted = 0; // rows of the suite under way
    const emitShared = (row: Row) => {
      emit(row);
      status.at(row.suite, `row ${++emitted + 1}`);
    };
    status.at(sharedSuites[0]!, "CPython (its figures for these suites)");
    const py = pythonShared([...sharedSuites], counts);
    if (py.error) status.print(`  CPython skipped: ${py.error}`);
    const suites = { manager: managerSuite, locks: locksSuite, queue: queueSuite };
    for (const suite of sharedSuites) {
      emitted = 0;
      status.at(suite, "row 1");
      await suites[suite](emitShared, counts);
      if (fallbackSuites.includes(suite)) {
        status.at(suite, "without the native addon");
        for (const row of await fallbackRows(suite, fallbackCounts)) emitShared(row);
      }
      for (const row of py.result ? pythonRows(suite, py.result) : []) emitShared(row);
      status.print(`\n${versusTable(rows, suite, format)}\n`);
    }
  }
  const clusterSizes = {
    calls: scaled(10_000),
    map: scaled(1_000_000),
    cpu: scaled(quick ? 20_000_000 : 60_000_000),
    runs,
  };
  if (wants("cluster")) {
    await clusterSuite(emit, clusterSizes, (row) => status.at("cluster", row));
    status.print(`\n${clusterTable(rows, format)}\n`);
  }
  if (argv.includes("--write")) {
    writeBenchmarks(rows, {
      clusterSizes,
      runs,
      counts,
      fallbackCounts,
      start,
      ran: (suite) => wants(suite),
      only: only ? [...only].join(",") : undefined,
    });
    status.print("\nwrote BENCHMARKS.md");
  }
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md

/** Joins `parts` with spaces and wraps the text at 100 columns. */
function paragraph(...parts: string[]): string {
  const lines: string[] = [];
  let line = "";
  for (const word of parts.join(" ").split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > 100) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join("\n");
}

/** Everything after this line is written by hand and kept by `--write`. */
const MARKER = "<!-- end of generated figures -->";

interface WriteOptions {
  clusterSizes: { calls: number; map: number; cpu: number };
  runs: number;
  counts: SharedCounts;
  fallbackCounts: SharedCounts;
  start: string;
  ran(suite: string): boolean;
  only: string | undefined;
}

/**
 * Writes BENCHMARKS.md: the header, then one section per suite: regenerated when the suite ran,
 * kept from the current file otherwise. Sections of the current file this code does not write, and
 * everything after MARKER, follow the marker unchanged.
 */
function writeBenchmarks(rows: Row[], o: WriteOptions): void {
  const c = o.counts;
  const f = o.fallbackCounts;
  const fallback = [
    "The fallback column is the spawn start method without the native addon, as when it cannot load:",
    "every primitive is then held by a broker in the process that made it and each operation is a",
    "message to it. It is measured in a child Node process started with `MULTIPROCESSING_TS_NO_NATIVE=1`",
    "(the addon is loaded or not once per process), with smaller counts:",
  ].join(" ");
  /** `formerly`: earlier headings of the section, dropped from the current file when it is regenerated. */
  const generated: { suite: string; heading: string; formerly?: string[]; body: () => string }[] = [
    { suite: "calls", heading: "One call per task (trivial task)", body: () => table(rows, "calls", true) },
    { suite: "map", heading: "map with default chunking (trivial task)", body: () => table(rows, "map", true) },
    { suite: "cpu", heading: "CPU-bound speed-up (8 tasks, warm pool)", body: () => table(rows, "cpu", true) },
    {
      suite: "workloads",
      heading: "Real work: sha256 + gzip of 64 KiB buffers, JSON.parse + reduce of 1 MB documents",
      body: () =>
        [
          paragraph(
            "Inputs generated from a seed, the same bytes for every contender (written to a temporary folder for",
            "CPython). Each pool is started and has run a task of the kind before the clock starts; each",
            "document reaches its worker as a 1 MB string, as in a program that received it, so the copy is",
            "timed (CPython's `Pool(2).map` pickles the same strings). Every result is checked against the",
            "sequential run's; CPython's gzip output comes from another zlib build, so its digests and CRC-32s",
            "are checked, and its size is given.",
          ),
          "",
          workloadsTable(rows, format),
        ].join("\n"),
    },
    { suite: "startup", heading: "Pool of 2: creation to first result", body: () => table(rows, "startup", true) },
    { suite: "transfer", heading: "10 MB Float64Array round trip", body: () => table(rows, "transfer") },
    {
      suite: "start",
      heading: "Process start-up against raw fork / Worker",
      body: () =>
        [
          o.start,
          "",
          "A `Process` started from a program run under tsx registers tsx only before its first TypeScript",
          "import, so a child whose target is JavaScript starts faster than a raw fork or Worker under tsx",
          "(which run tsx's preload). A child that imports a `.ts` module pays 150–400 ms of CPU once for it.",
        ].join("\n"),
    },
    {
      suite: "manager",
      heading: "Manager: a child's round trips to a dict",
      body: () =>
        [
          paragraph(
            `A child (in the start method of the manager's server) calls a \`manager.dict()\` proxy: ${c.manager} calls`,
            "alternating `await d.set(k, i)` and `await d.get(k)`, then as many sets sent 1000 at a time and",
            `awaited together. Timed in the child; medians of ${c.runs} rounds after a warm-up. CPython:`,
            "`Manager().dict()` in the spawn context, a child doing `d[k] = i; d[k]` (each set and each get one",
            "round trip); it has no pipelined form, so the pipelined row is compared with its sequential figure.",
          ),
          "",
          versusTable(rows, "manager", format),
        ].join("\n"),
    },
    {
      suite: "locks",
      heading: "Locks: acquire+release, and 4 children incrementing a Value",
      formerly: ["Locks: acquire+release, and 2 children incrementing a Value"],
      body: () =>
        [
          paragraph(
            `Uncontended: in one process, ${c.lock} pairs of \`lock.acquireSync(); lock.release()\` (${c.lock >> 2} of`,
            "`await lock.acquire(); lock.release()`) on a `new Lock({ context })`; CPython: `mp.Lock()`,",
            "`acquire(); release()`. Contended: 4 children (processes, or threads in the thread start method)",
            `each add 1 to a \`Value("i", 0)\` ${c.increments} times holding its \`getLock()\` (CPython: \`Value('i')\`,`,
            "`with v.get_lock(): v.value += 1`), started together by a Barrier that the parent waits at too;",
            "increments/s over the span from the first loop's start to the last one's end. The machine has",
            `${cpus().length} cores, so the children also take turns on them. Medians of ${c.runs} rounds after a warm-up;`,
            "every round's final count is checked.",
            fallback,
            `${f.lock} pairs (${f.lock >> 2} awaited), ${f.increments} increments by each child.`,
          ),
          "",
          versusTable(rows, "locks", format),
        ].join("\n"),
    },
    {
      suite: "queue",
      heading: "Queue: a child puts numbers, the parent gets them; round trips",
      formerly: ["Queue: a child puts numbers, the parent gets them"],
      body: () =>
        [
          paragraph(
            "The parent creates the queue for the start method measured (`new Queue(0, { context })`: a ring in",
            "shared memory); a child puts numbers (first the time it starts):",
            `${c.queueAwaited} when it awaits each put, ${c.queue} when it puts 1000 at a time (and for CPython);`,
            "the parent gets them all. Items/s from the child's start to the parent's last get (a clock both",
            `share); medians of ${c.runs} rounds after a warm-up round of the same size. CPython: \`mp.Queue()\`, whose \`put\` hands the`,
            "item to a feeder thread and returns, and `mp.SimpleQueue()`, in the spawn context.",
            `Round trips: the parent puts a number on one Queue, a child gets it and puts it on another, the`,
            `parent gets it back, each put and get awaited (CPython: \`mp.Queue()\` both ways, the same`,
            `loop); ${c.roundTrips} round trips a round, timed in the parent, after a warm-up round of the same size.`,
            fallback,
            `${f.queueAwaited} items one way, ${f.roundTrips} round trips.`,
          ),
          "",
          versusTable(rows, "queue", format),
        ].join("\n"),
    },
    {
      suite: "cluster",
      heading: "Cluster: redis-server and 2 worker commands on this machine",
      body: () =>
        [
          paragraph(
            "The cluster start method (`new Pool({ cluster: url })`) against a private redis-server on a Unix",
            "socket and two `multiprocessing-ts worker` commands of one local thread each, all on this machine,",
            "beside the local pools and beside the engine's floor: a bare BullMQ producer (`Queue.addBulk`,",
            "`QueueEvents`) and two bare BullMQ worker processes, each of the worker command's BullMQ",
            `concurrency, in the same Redis. ${o.clusterSizes.calls} one-item \`applyAsync\` calls all in flight (the`,
            `cluster pool's \`processes\` is that count); a \`map\` of ${o.clusterSizes.map} trivial items with the`,
            "cluster's default chunks and with `chunksize: 100`; 8 tasks of a CPU-bound loop of",
            `${o.clusterSizes.cpu} iterations, as speed-up over running them in sequence here. Every pool is started`,
            `and has run a task before the clock starts; medians of ${o.runs} runs after a warm-up. The ratio is the`,
            "cluster pool's speed on the same work divided by the row's; the targets are the cluster's.",
          ),
          "",
          clusterTable(rows, format),
        ].join("\n"),
    },
  ];
  const current = existsSync("BENCHMARKS.md") ? readFileSync("BENCHMARKS.md", "utf8") : "";
  const at = current.indexOf(MARKER);
  const head = at >= 0 ? current.slice(0, at) : current;
  const tail = at >= 0 ? current.slice(at + MARKER.length).replace(/^\n+/, "") : "";
  const old = new Map<string, string>();
  for (const part of head.split(/^(?=## )/m).slice(1)) {
    const heading = part.slice(3, part.indexOf("\n") >= 0 ? part.indexOf("\n") : undefined).trim();
    old.set(heading, part.trim());
  }
  const out: string[] = [];
  const regenerated: string[] = [];
  let kept = false;
  for (const section of generated) {
    const headings = [section.heading, ...(section.formerly ?? [])];
    const previous = headings.find((heading) => old.has(heading));
    if (o.ran(section.suite) && (section.suite !== "start" || o.start)) {
      out.push(`## ${section.heading}\n\n${section.body()}`);
      regenerated.push(section.suite);
    } else if (previous) {
      out.push(old.get(previous)!);
      kept = true;
    }
    for (const heading of headings) old.delete(heading);
  }
  const partial = kept
    ? ` This run (\`--only ${o.only}\`) regenerated the sections of ${regenerated.join(", ")}; the others are from an earlier run.`
    : "";
  const header = [
    "# Benchmarks",
    "",
    `Machine: ${machine()}. Produced by \`npm run bench -- --write\` (\`bench/index.ts\`); 2 workers everywhere; medians of ${o.runs} runs after a warm-up. Ratios compare ours in the same kind (threads with threads, processes with processes) with the row.${partial}`,
  ].join("\n");
  const handWritten = [...old.values(), tail.trim()].filter(Boolean);
  const text = [header, ...out, MARKER, ...handWritten].join("\n\n");
  writeFileSync("BENCHMARKS.md", `${text}\n`);
}
