/**
 * `npm run bench -- --write`: BENCHMARKS.md from the rows of a run, one section per suite, with what
 * each measures in words; the sections of suites that did not run, and what follows the marker, are
 * kept from the current file.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { clusterTable } from "./cluster.js";
import { STARTUP_ROUNDS_PER_RUN } from "./pool-suites.js";
import { format, machine, table } from "./report.js";
import type { Row } from "./row.js";
import { type SharedCounts, versusTable } from "./shared.js";
import { workloadsTable } from "./workloads.js";

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

/** What the text around the figures says of the run: its counts, and which suites ran. */
export interface WriteOptions {
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
export function writeBenchmarks(rows: Row[], o: WriteOptions): void {
  const c = o.counts;
  const f = o.fallbackCounts;
  const fallback = [
    "The fallback column is the spawn start method without the native addon, as when it cannot load:",
    "every primitive is then held by an agent server in the process that made it and each operation is a",
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
    {
      suite: "startup",
      heading: "Pool of 2: creation to first result",
      body: () =>
        [
          paragraph(
            "From the pool's constructor to its first result, the pool closed after each: a warm-up start of",
            `each pool, then ${STARTUP_ROUNDS_PER_RUN * o.runs} rounds that take the pools in turn (each round one pool further on),`,
            "and the median of each pool's rounds.",
          ),
          "",
          table(rows, "startup", true),
        ].join("\n"),
    },
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
            "cluster pool's `processes` is that count), which a backlogged cluster pool sends several to a job, and",
            "the same with a `timeout` on every call, which sends each as a job of its own, as the bare pair does;",
            `a \`map\` of ${o.clusterSizes.map} trivial items with the`,
            "cluster's default chunks and with `chunksize: 100` (from a pool of 8, twice the jobs the workers run",
            `at once, and from one of ${o.clusterSizes.calls}, whose backlog of chunks goes several to a job); 8 tasks of a CPU-bound loop of`,
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
