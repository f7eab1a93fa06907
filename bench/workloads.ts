/**
 * The workloads suite of `npm run bench`: real work, not trivial tasks, on every contender in one
 * run, each timed and checked against the sequential run:
 *
 *   seeded inputs ─► sequential in this thread ─────────────► reference time and results
 *                 ─► each pool, started and warm, map ───────► time, speed-up, results checked
 *                 ─► files in a temporary folder ─► CPython ─► time, speed-up, results checked
 *
 * The two kinds of work (workload-tasks.ts): sha256 + gzip of 64 KiB buffers, and `JSON.parse` + a
 * reduction of 1 MB documents. Every document travels to its worker as a 1 MB string (copied by
 * `postMessage`, or written to a pipe between processes) as it would in a program that received
 * it, so that copy is part of the time; CPython's `Pool.map` pickles the same strings. A pool's
 * start-up is not: it is started, and has run one task of the kind, before the clock starts.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "multiprocessing-ts";
import type { Row } from "./row.js";
import { WORKERS, startPiscina, startWorkerpool } from "./peers.js";
import { pythonFailure, runPython } from "./cpython.js";
import { type WorkloadRecord, hashAndGzip, parseAndReduce } from "./workload-tasks.js";

/** How much work: the full suite is 2 000 buffers and 200 documents, three runs each. */
export interface WorkloadSizes {
  buffers: number;
  documents: number;
  /** Timed runs per contender; the median is reported. */
  runs: number;
}

const SUITE = "workloads";
const BUFFER_BYTES = 64 * 1024;
const DOCUMENT_CHARS = 1_000_000;
/** A contender that takes longer than this for one run is reported as hung (and its pool ended). */
const HANG_MS = 600_000;
const SEQUENTIAL = "sequential (this thread)";

type TaskName = "hashAndGzip" | "parseAndReduce";

interface Work {
  /** The row's label: what is computed and how the inputs reach the workers. */
  task: string;
  name: TaskName;
  fn: (x: never) => unknown;
  inputs: unknown[];
}

/** A pool under test: runs `work` over all its inputs and returns the results. */
interface Runner {
  run(work: Work): Promise<unknown[]>;
  close(): Promise<void>;
}

interface Contender {
  name: string;
  /** Whether the results come in input order (else they are compared as a multiset). */
  ordered: boolean;
  make(): Promise<Runner>;
}

// ---------------------------------------------------------------------------------------------
// Inputs: the same bytes for every contender and every run of the bench

/** mulberry32: a small seeded generator, so that every run of the bench has the same inputs. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but " +
  "have an they you were her she there been one all we their has would when if so no will more can " +
  "order invoice shipped pending total amount customer 2024-03-17 12:04:55 ERROR WARN INFO id=4711"
).split(" ");

/**
 * `n` buffers of 64 KiB of text-like bytes (gzip shrinks them about 3×, as logs or documents):
 * windows of one seeded 1 MiB text at seeded offsets, each starting with its index so that no two
 * are the same.
 */
export function makeBuffers(n: number, seed = 1): Uint8Array[] {
  const rnd = random(seed);
  const text = Buffer.alloc(1024 * 1024);
  for (let at = 0; at < text.length; ) {
    const word = WORDS[Math.floor(rnd() * WORDS.length)]!;
    at += text.write(rnd() < 0.08 ? `${word}\n` : `${word} `, at, "latin1");
  }
  return Array.from({ length: n }, (_, i) => {
    const start = Math.floor(rnd() * (text.length - BUFFER_BYTES));
    const buffer = new Uint8Array(BUFFER_BYTES);
    buffer.set(text.subarray(start, start + BUFFER_BYTES));
    new DataView(buffer.buffer).setUint32(0, i, true);
    return buffer;
  });
}

const NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Dennis", "Margaret", "Niklaus"];
const TAGS = ["urgent", "retail", "export", "gift", "fragile", "bulk"];

/** `n` JSON documents of about 1 MB each (ASCII): arrays of seeded records. */
export function makeDocuments(n: number, seed = 2): string[] {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  let id = 0;
  return Array.from({ length: n }, () => {
    const parts: string[] = [];
    let chars = 2;
    while (chars < DOCUMENT_CHARS) {
      const record: WorkloadRecord = {
        id: id++,
        name: `${pick(NAMES)} ${pick(NAMES)}${rnd() < 0.3 ? ` ${pick(NAMES)}son` : ""}`,
        tags: Array.from({ length: Math.floor(rnd() * 4) }, () => pick(TAGS)),
        price: 100 + Math.floor(rnd() * 99_900),
        qty: 1 + Math.floor(rnd() * 50),
        active: rnd() < 0.8,
      };
      const json = JSON.stringify(record);
      parts.push(json);
      chars += json.length + 1;
    }
    return `[${parts.join(",")}]`;
  });
}

// ---------------------------------------------------------------------------------------------
// Checking a contender's results

/**
 * Why `got` is not the sequential run's `expected` results, or undefined when it is. `ordered`:
 * compared item by item (map keeps the input order), else as a multiset (imapUnordered yields
 * results as they finish). `key` picks what must be equal in each result.
 */
export function difference(
  expected: readonly unknown[],
  got: unknown,
  ordered: boolean,
  key: (result: unknown) => string = (r) => JSON.stringify(r),
): string | undefined {
  if (!Array.isArray(got)) return `it returned ${typeof got}, not a list of results`;
  if (got.length !== expected.length) return `${got.length} results for ${expected.length} inputs`;
  const want = expected.map(key);
  const have = got.map(key);
  if (!ordered) {
    want.sort();
    have.sort();
  }
  const i = want.findIndex((w, i) => w !== have[i]);
  if (i < 0) return undefined;
  const short = (s: string | undefined) => (s && s.length > 80 ? `${s.slice(0, 77)}...` : s);
  return ordered
    ? `result ${i} is ${short(have[i])}, the sequential run's ${short(want[i])}`
    : `its results are not the sequential run's, in any order (${short(have[i])} where ${short(want[i])} sorts)`;
}

// ---------------------------------------------------------------------------------------------
// Contenders

function ours(context: "thread" | "spawn", call: "map" | "imapUnordered"): Contender {
  return {
    name: `multiprocessing-ts (${context}), ${call}`,
    ordered: call === "map",
    async make() {
      const pool = new Pool({ processes: WORKERS, context });
      return {
        async run(work) {
          const fn = work.fn as (x: unknown) => unknown;
          if (call === "map") return pool.map(fn, work.inputs);
          const out: unknown[] = [];
          for await (const result of pool.imapUnordered(fn, work.inputs)) out.push(result);
          return out;
        },
        close: () => pool.terminate(),
      };
    },
  };
}

function piscina(): Contender {
  return {
    name: "piscina, run() per item",
    ordered: true,
    async make() {
      const pool = await startPiscina();
      return {
        run: (work) => Promise.all(work.inputs.map((x) => pool.run(x, { name: work.name }))),
        close: () => pool.destroy(),
      };
    },
  };
}

function workerpool(workerType: "thread" | "process"): Contender {
  return {
    name: `workerpool (${workerType}), exec() per item`,
    ordered: true,
    async make() {
      const pool = await startWorkerpool(workerType);
      return {
        async run(work) {
          try {
            return await Promise.all(work.inputs.map((x) => pool.exec(work.name, [x])));
          } catch (error) {
            if (workerType !== "process" || !(work.inputs[0] instanceof Uint8Array)) throw error;
            const why = "its process workers get their arguments as JSON, where a Uint8Array becomes an object";
            throw new Error(`${why} (${(error as Error).message})`);
          }
        },
        close: async () => void (await pool.terminate()),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CPython: the same work with hashlib, zlib and json, on the same bytes read from files

const pythonScript = `
import hashlib, json, multiprocessing as mp, sys, time, zlib

def hash_and_gzip(b):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    gz = c.compress(b) + c.flush()
    return [hashlib.sha256(b).hexdigest(), int.from_bytes(gz[-8:-4], "little"), len(gz)]

def parse_and_reduce(text):
    records = json.loads(text)
    total = urgent = longest = 0
    for r in records:
        if r["active"]: total += r["price"] * r["qty"]
        if "urgent" in r["tags"]: urgent += 1
        if len(r["name"]) > longest: longest = len(r["name"])
    return [len(records), total, urgent, longest]

def timed(runs, f):
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter(); result = f(); ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return {"ms": ms[len(ms) // 2], "results": result}

def main():
    folder, buffer_bytes, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(folder + "/buffers.bin", "rb") as f: data = f.read()
    buffers = [data[i:i + buffer_bytes] for i in range(0, len(data), buffer_bytes)]
    with open(folder + "/documents.txt", encoding="ascii") as f: documents = f.read().split("\\n")
    work = {"hashAndGzip": (hash_and_gzip, buffers), "parseAndReduce": (parse_and_reduce, documents)}
    out = {"zlib": zlib.ZLIB_RUNTIME_VERSION}
    for name, (fn, items) in work.items():
        fn(items[0])
        out[name + " sequential"] = timed(runs, lambda: [fn(x) for x in items])
    with mp.get_context("spawn").Pool(2) as p:
        for name, (fn, items) in work.items():
            p.map(fn, items[:2], chunksize=1)  # started, and each worker warm
            out[name + " pool"] = timed(runs, lambda: p.map(fn, items))
    print(json.dumps(out))

if __name__ == "__main__": main()
`;

type PythonTimed = { ms: number; results: unknown[] };
type PythonFigures = Record<string, PythonTimed> & { zlib: string };

/** Writes the inputs to a temporary folder, runs CPython's script on them, removes the folder. */
function python(buffers: Uint8Array[], documents: string[], runs: number): PythonFigures | string {
  const dir = mkdtempSync(join(tmpdir(), "mpts-workloads-"));
  try {
    const write = (file: string, parts: (Uint8Array | string)[], separator?: string) => {
      const fd = openSync(join(dir, file), "w");
      try {
        parts.forEach((part, i) => {
          if (separator && i > 0) writeSync(fd, separator);
          if (typeof part === "string") writeSync(fd, part);
          else writeSync(fd, part);
        });
      } finally {
        closeSync(fd);
      }
    };
    write("buffers.bin", buffers);
    write("documents.txt", documents, "\n");
    const result = runPython(pythonScript, [dir, String(BUFFER_BYTES), String(runs)], HANG_MS);
    const error = pythonFailure(result);
    if (error) return error;
    try {
      return JSON.parse(result.stdout.trim().split("\n").pop()!);
    } catch {
      return "CPython's script printed no figures";
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The suite

/** Rejects with a message naming `what` when `promise` takes longer than HANG_MS. */
async function withinHangLimit<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${HANG_MS / 1000} s`)), HANG_MS);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const speedUp = (sequential: number, ms: number) => `${(sequential / ms).toFixed(2)}× speed-up`;

/**
 * Runs the workloads suite: for each kind of work, the sequential reference, then every contender
 * (ours in both start methods with map and imapUnordered, piscina, workerpool, CPython). Each row's
 * value is the median time in ms; its note, the speed-up over the sequential run, or why there is
 * no figure (not installed, failed, or a wrong result). `at` is told what runs next, before it
 * starts (the bench's progress line).
 */
export async function workloadsSuite(
  emit: (row: Row) => void,
  sizes: WorkloadSizes,
  at: (what: string) => void = () => {},
): Promise<void> {
  at("making the inputs");
  const buffers = makeBuffers(sizes.buffers);
  const documents = makeDocuments(sizes.documents);
  const works: Work[] = [
    {
      task: `sha256 + gzip of ${sizes.buffers} × 64 KiB buffers`,
      name: "hashAndGzip",
      fn: hashAndGzip,
      inputs: buffers,
    },
    {
      task: `JSON.parse + reduce of ${sizes.documents} × 1 MB documents, each sent to a worker as a string`,
      name: "parseAndReduce",
      fn: parseAndReduce,
      inputs: documents,
    },
  ];
  const contenders = [
    ours("thread", "map"),
    ours("thread", "imapUnordered"),
    ours("spawn", "map"),
    ours("spawn", "imapUnordered"),
    piscina(),
    workerpool("thread"),
    workerpool("process"),
  ];
  const row = (work: Work, name: string, value: number, note: string): Row => ({
    suite: SUITE,
    task: work.task,
    name,
    value,
    unit: "ms",
    note,
  });
  // CPython first, while no pool of ours runs; its results are checked with each kind of work
  at("CPython (hashlib, zlib, json)");
  const py = python(buffers, documents, sizes.runs);
  for (const work of works) {
    const fn = work.fn as (x: unknown) => unknown;
    at(`${work.name} · ${SEQUENTIAL}`);
    fn(work.inputs[0]);
    const ms: number[] = [];
    let results: unknown[] = [];
    for (let r = 0; r < sizes.runs; r++) {
      const t0 = performance.now();
      results = work.inputs.map(fn);
      ms.push(performance.now() - t0);
    }
    const reference = { ms: median(ms), results };
    emit(row(work, SEQUENTIAL, reference.ms, "the reference"));
    for (const contender of contenders) {
      at(`${work.name} · ${contender.name}`);
      emit(await measure(work, contender, reference, sizes.runs, row));
    }
    // gzip's output differs between zlib builds: CPython's is checked on what does not
    const key = work.name === "hashAndGzip" ? (r: unknown) => JSON.stringify((r as unknown[]).slice(0, 2)) : undefined;
    for (const [name, which] of [
      ["CPython sequential", "sequential"],
      ["CPython Pool(2).map", "pool"],
    ] as const) {
      if (typeof py === "string") {
        emit(row(work, name, Number.NaN, py));
        continue;
      }
      const figures = py[`${work.name} ${which}`]!;
      const wrong = difference(reference.results, figures.results, true, key);
      if (wrong) emit({ ...row(work, name, Number.NaN, wrong), wrong: true });
      else {
        let note = speedUp(reference.ms, figures.ms);
        if (key) note += `; gzip ${gzipSizes(reference.results, figures.results)} with zlib ${py.zlib}`;
        emit(row(work, name, figures.ms, note));
      }
    }
  }
}

/** CPython's total gzip size against Node.js's, in words. */
function gzipSizes(node: unknown[], python: unknown[]): string {
  const total = (xs: unknown[]) => xs.reduce<number>((sum, r) => sum + (r as number[])[2]!, 0);
  const change = (total(python) / total(node) - 1) * 100;
  return `${change >= 0 ? "+" : ""}${change.toFixed(1)}% in size`;
}

async function measure(
  work: Work,
  contender: Contender,
  reference: { ms: number; results: unknown[] },
  runs: number,
  row: (work: Work, name: string, value: number, note: string) => Row,
): Promise<Row> {
  let runner: Runner | undefined;
  try {
    runner = await contender.make();
  } catch (error) {
    return row(work, contender.name, Number.NaN, (error as Error).message ?? String(error));
  }
  try {
    await withinHangLimit(runner.run({ ...work, inputs: work.inputs.slice(0, WORKERS) }), "the warm-up");
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const results = await withinHangLimit(runner.run(work), "a run");
      ms.push(performance.now() - t0);
      const wrong = difference(reference.results, results, contender.ordered);
      if (wrong) return { ...row(work, contender.name, Number.NaN, wrong), wrong: true };
    }
    return row(work, contender.name, median(ms), speedUp(reference.ms, median(ms)));
  } catch (error) {
    return row(work, contender.name, Number.NaN, `its task failed: ${(error as Error).message ?? String(error)}`);
  } finally {
    await runner.close();
  }
}

/** The suite's rows as a markdown table: per kind of work, each contender's time and speed-up. */
export function workloadsTable(rows: Row[], format: (x: number) => string): string {
  const lines = ["| work | who | time | speed-up over sequential (this thread) |", "|---|---|---|---|"];
  for (const r of rows.filter((r) => r.suite === SUITE)) {
    const [time, ratio] = r.wrong
      ? [`WRONG RESULT: ${r.note}`, "—"]
      : Number.isNaN(r.value)
        ? [`skipped: ${r.note}`, "—"]
        : [`${format(r.value)} ms`, r.name === SEQUENTIAL ? "1.00×" : r.note!];
    lines.push(`| ${r.task} | ${r.name} | ${time} | ${ratio} |`);
  }
  return lines.join("\n");
}
