/**
 * Start-up cost of one trivial `Process`, against a raw `child_process.fork` / `new Worker` of the
 * same trivial script, under plain node and under tsx.
 *
 *   bench (this module) ─► runs itself as a program, `--measure <kind>` ─► the program starts a
 *   child N times; the child prints `first <timestamp>`; the program prints `start`/`joined`
 *
 * Timestamps are `performance.timeOrigin + performance.now()` in each process: the same clock, so
 * "start to first line" spans two processes. Medians of N runs, taken in blocks that go through the
 * kinds in turn, each block's program after one warm-up.
 */
import { fork, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Process } from "multiprocessing-ts";
import { firstLine } from "./start-child.js";

const self = fileURLToPath(import.meta.url);
const childUrl = new URL("./start-child.js", import.meta.url);
const child = fileURLToPath(childUrl);
const now = () => performance.timeOrigin + performance.now();

type Kind = "raw-fork" | "raw-worker" | "process-spawn" | "process-thread";

/** One row of results: medians in ms. */
export interface StartRow {
  loader: "node" | "tsx";
  kind: Kind;
  firstLineMs: number;
  joinMs: number;
  /** Why the row was not measured (its figures are then NaN). */
  skipped?: string;
}

async function measureOnce(kind: Kind): Promise<void> {
  const t0 = now();
  console.log(`start ${t0}`);
  if (kind === "raw-fork") {
    const raw = fork(child, ["--child"], { stdio: "inherit" });
    await new Promise((resolve) => raw.on("exit", resolve));
  } else if (kind === "raw-worker") {
    const worker = new Worker(childUrl, { argv: ["--child"] });
    await new Promise((resolve) => worker.on("exit", resolve));
  } else {
    const p = new Process({ target: firstLine, context: kind === "process-spawn" ? "spawn" : "thread" });
    p.start();
    await p.join();
  }
  console.log(`joined ${now()}`);
}

/** Runs the measurement program for `kind` under `loader` (`runs` starts after a warm-up); their times in ms. */
async function measure(
  kind: Kind,
  loader: "node" | "tsx",
  runs: number,
): Promise<{ first: number[]; join: number[] } | { skipped: string }> {
  const execArgv = loader === "tsx" ? ["--import", "tsx"] : [];
  const program = spawn(process.execPath, [...execArgv, self, "--measure", kind, String(runs + 1)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  program.stdout.on("data", (chunk) => (out += chunk));
  program.stderr.on("data", (chunk) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => program.on("close", resolve));
  if (code !== 0) {
    const line = err.split("\n").find((l) => /Error|error:/.test(l)) ?? err.trim().split("\n")[0] ?? "";
    return { skipped: `the measuring program exited with ${code ?? "a signal"}${line ? `: ${line.trim()}` : ""}` };
  }
  const first: number[] = [];
  const join: number[] = [];
  let start = 0;
  let firstSeen = 0;
  for (const line of out.split("\n")) {
    const [tag, value] = line.split(" ");
    const t = Number(value);
    if (tag === "start") start = t;
    else if (tag === "first") firstSeen = t;
    else if (tag === "joined") {
      first.push(firstSeen - start);
      join.push(t - start);
    }
  }
  // the first run is a warm-up
  return { first: first.slice(1), join: join.slice(1) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
}

/**
 * Measures every kind under both loaders: in BLOCKS blocks that take the kinds in turn, each a
 * program of its own, so that the machine's drift over the minute this takes falls on every kind
 * alike (one program per kind, one after another, put 1.1× to 1.8× between the same two builds).
 */
export async function runProcessStartBench(runs = 10): Promise<StartRow[]> {
  const rows: StartRow[] = [];
  const perBlock = Math.max(1, Math.ceil(runs / BLOCKS));
  for (const loader of ["node", "tsx"] as const) {
    const missing = loader === "tsx" ? tsxMissing() : undefined;
    const kinds = ["raw-fork", "process-spawn", "raw-worker", "process-thread"] as const;
    const samples = new Map<Kind, { first: number[]; join: number[]; skipped?: string }>(
      kinds.map((kind) => [kind, { first: [], join: [], skipped: missing }]),
    );
    for (let block = 0; block < BLOCKS && !missing; block++) {
      for (const kind of kinds) {
        const into = samples.get(kind)!;
        if (into.skipped) continue;
        const got = await measure(kind, loader, perBlock);
        if ("skipped" in got) into.skipped = got.skipped;
        else {
          into.first.push(...got.first);
          into.join.push(...got.join);
        }
      }
    }
    for (const kind of kinds) {
      const { first, join, skipped } = samples.get(kind)!;
      rows.push(
        skipped
          ? { loader, kind, firstLineMs: Number.NaN, joinMs: Number.NaN, skipped }
          : { loader, kind, firstLineMs: median(first), joinMs: median(join) },
      );
    }
  }
  return rows;
}

/** Blocks of runProcessStartBench. */
const BLOCKS = 5;

/** Why `node --import tsx`, run in this folder, would not start; undefined when it would. */
function tsxMissing(): string | undefined {
  try {
    createRequire(join(process.cwd(), "bench.js")).resolve("tsx");
    return undefined;
  } catch {
    return "tsx is not installed here (npm install --save-dev tsx)";
  }
}

/** A markdown table of the rows with ratios to the raw equivalent. */
export function formatStartRows(rows: StartRow[]): string {
  const lines = [
    "| loader | what | start → first line | start → join | ratio to raw (first line / join) |",
    "|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const raw = rows.find(
      (r) => r.loader === row.loader && r.kind === (row.kind === "process-spawn" ? "raw-fork" : "raw-worker"),
    );
    const what = {
      "raw-fork": "raw `child_process.fork`",
      "raw-worker": "raw `new Worker`",
      "process-spawn": "`Process` (spawn)",
      "process-thread": "`Process` (thread)",
    }[row.kind];
    if (row.skipped) {
      lines.push(`| ${row.loader} | ${what} | skipped: ${row.skipped} | | |`);
      continue;
    }
    const ratio =
      row.kind.startsWith("process") && raw && !raw.skipped
        ? `${(row.firstLineMs / raw.firstLineMs).toFixed(2)}× / ${(row.joinMs / raw.joinMs).toFixed(2)}×`
        : "—";
    lines.push(
      `| ${row.loader} | ${what} | ${row.firstLineMs.toFixed(1)} ms | ${row.joinMs.toFixed(1)} ms | ${ratio} |`,
    );
  }
  return lines.join("\n");
}

const args = process.argv.slice(2);
if (args[0] === "--measure") {
  const runs = Number(args[2]);
  for (let i = 0; i < runs; i++) await measureOnce(args[1] as Kind);
}
