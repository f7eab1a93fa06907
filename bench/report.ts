/**
 * What every suite of `npm run bench` prints through: the progress line of the run under way, each
 * row as it comes, and the figures and tables of the pool suites.
 */
import { spawnSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import type { Row } from "./row.js";
import { BenchStatus } from "./status.js";

/** The progress line of the run under way (every suite reports through it): see `startStatus`. */
export let status = new BenchStatus([]);

/** Starts the progress line of a run of `suites`, which every suite then reports through. */
export function startStatus(suites: string[]): BenchStatus {
  status = new BenchStatus(suites);
  return status;
}

export function report(row: Row): void {
  const value = row.wrong
    ? `WRONG RESULT (${row.note})`
    : Number.isNaN(row.value)
      ? `skipped (${row.note})`
      : `${format(row.value)} ${row.unit}${row.note ? ` (${row.note})` : ""}`;
  const name = row.task ? `${row.name}, ${row.task}` : row.name;
  status.print(`  ${row.suite.padEnd(9)} ${name.padEnd(34)} ${value}`);
}

export function format(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return x >= 100 ? x.toFixed(0) : x.toFixed(2);
}

export function machine(): string {
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
export function table(rows: Row[], suite: string, compare = false): string {
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
