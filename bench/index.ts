/**
 * `npm run bench` / `multiprocessing-ts bench`: this library and its peers (piscina, tinypool,
 * workerpool, bare hand-written pools, CPython's multiprocessing when python3 is present) on the
 * same work, in one run, with ratios: every row is printed in every run, and a contender that is
 * skipped or fails says why on its row. Options: `--quick` (smaller counts), `--scale F` (every
 * count times F, to check at small sizes that the suites run), `--only a,b,...`
 * (suites: the pool suites of pool-suites.ts: calls, map, cpu, startup, transfer; workloads (real
 * work: workloads.ts); start (process-start.ts); the shared-state suites of shared.ts: manager,
 * locks, queue; and cluster (cluster.ts: a redis-server and two worker commands on this machine,
 * skipped without redis-server)), `--write` (also write BENCHMARKS.md, benchmarks-md.ts: the
 * sections of the suites that ran are regenerated, the others and everything after
 * `<!-- end of generated figures -->` are kept).
 *
 * Each figure is the median of several runs after a warm-up; every pool has 2 workers. Peers are
 * dev dependencies: a missing one is reported as skipped. This file reads the options and runs the
 * suites asked for; report.ts prints what they measure.
 */
import { clusterSuite, clusterTable } from "./cluster.js";
import { writeBenchmarks } from "./benchmarks-md.js";
import { formatStartRows, runProcessStartBench } from "./process-start.js";
import {
  bareForks,
  bareThreads,
  calls,
  cpuSuite,
  mapSuite,
  ours,
  piscina,
  python,
  pythonRow,
  startupSuite,
  tinypool,
  transferSuite,
  workerpool,
} from "./pool-suites.js";
import { format, machine, report, startStatus, status, table } from "./report.js";
import type { Row } from "./row.js";
import {
  FALLBACK_FLAG,
  type SharedCounts,
  fallbackRows,
  fallbackSuites,
  locksSuite,
  managerSuite,
  printFallbackRows,
  queueSuite,
  versusTable,
} from "./shared.js";
import { pythonRows, pythonShared } from "./shared-cpython.js";
import { workloadsSuite, workloadsTable } from "./workloads.js";

export type { Row };

/** Every suite, in the order they run. */
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
  startStatus(SUITES.filter((suite) => !options.only || options.only.has(suite)));
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
