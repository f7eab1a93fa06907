/**
 * The pool suites of `npm run bench`: calls (one call per task), map, cpu (a CPU-bound speed-up),
 * startup (creation to first result) and transfer (a 10 MB Float64Array there and back), with the
 * pools they compare (ours in both start methods, the peers, bare hand-written pools) behind one
 * small adapter, and CPython's figures for calls, map and startup from a script of its own.
 */
import { fork } from "node:child_process";
import { Worker } from "node:worker_threads";
import { Pool } from "multiprocessing-ts";
import { WORKERS, here, optional, startPiscina, startWorkerpool } from "./peers.js";
import { report, status } from "./report.js";
import type { Row } from "./row.js";
import { pythonFailure, runPython } from "./cpython.js";
import { cpuLoop, identity } from "./tasks-min.js";

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

export function ours(context: "thread" | "spawn"): Factory {
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

export function piscina(): Factory {
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

export function tinypool(runtime: "worker_threads" | "child_process"): Factory {
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

export function workerpool(workerType: "thread" | "process"): Factory {
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
export function bareThreads(): Factory {
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

export function bareForks(): Factory {
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
export function python(nCalls: number, nMap: number): { result?: PythonCalls; error?: string } {
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
export function pythonRow(
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

export async function calls(rows: Row[], factories: Factory[], n: number, runs: number): Promise<void> {
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

export async function mapSuite(rows: Row[], factories: Factory[], n: number, runs: number): Promise<void> {
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

export async function cpuSuite(rows: Row[], size: number): Promise<void> {
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

/**
 * A pool's creation to its first result, for each factory: a warm-up each, then
 * STARTUP_ROUNDS_PER_RUN × `runs` rounds that take the factories in turn (the machine's drift falls
 * on all of them alike), and the median of each one's rounds. A start takes 50-200 ms and varies by
 * a third from one to the next on this kind of machine, so three of them would rank the pools by
 * chance.
 */
export async function startupSuite(rows: Row[], factories: Factory[], runs: number): Promise<void> {
  const startOnce = async (f: Factory) => {
    const t0 = performance.now();
    const pool = await f.make();
    await pool.call(1);
    const elapsed = performance.now() - t0;
    await pool.close();
    return elapsed;
  };
  const times = new Map(factories.map((f) => [f, [] as number[]]));
  const failed = new Map<Factory, string>();
  const rounds = STARTUP_ROUNDS_PER_RUN * runs;
  for (let round = -1; round < rounds; round++) {
    // each round starts one factory further on: none is always the one after another's teardown
    const turn = (round + factories.length) % factories.length;
    for (const f of [...factories.slice(turn), ...factories.slice(0, turn)]) {
      if (failed.has(f)) continue;
      status.at("startup", `${f.name} (round ${round + 2} of ${rounds + 1})`);
      try {
        const ms = await startOnce(f);
        if (round >= 0) times.get(f)!.push(ms);
      } catch (error) {
        failed.set(f, (error as Error).message);
      }
    }
  }
  for (const f of factories) {
    const xs = times.get(f)!.sort((a, b) => a - b);
    const note = failed.get(f);
    rows.push(
      note === undefined
        ? { suite: "startup", name: f.name, value: xs[Math.floor(xs.length / 2)]!, unit: "ms" }
        : { suite: "startup", name: f.name, value: Number.NaN, unit: "ms", note },
    );
    report(rows.at(-1)!);
  }
}

/** Rounds of the startup suite for every run the other suites make. */
export const STARTUP_ROUNDS_PER_RUN = 5;

export async function transferSuite(rows: Row[], runs: number): Promise<void> {
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
