/**
 * CPython's `multiprocessing` on the work of the shared-state suites (shared.ts), in the spawn start
 * method: one script for every suite asked for, and its figures as rows beside ours.
 */
import { pythonFailure, runPython } from "./cpython.js";
import type { Row } from "./row.js";
import {
  CONTENDED,
  CONTENDERS,
  CPYTHON,
  PY_UNCONTENDED,
  ROUND_TRIP,
  type SharedCounts,
  nsNote,
  perOp,
} from "./shared.js";

const pythonScript = `
import json, multiprocessing as mp, sys, time

def median(xs):
    xs = sorted(xs); return xs[len(xs) // 2]

def warm_up(n): return max(2, n >> 2)

def round_trips(d, n, runs):
    seq = []
    for r in range(runs + 1):
        count = warm_up(n) if r == 0 else n
        t0 = time.perf_counter()
        for i in range(0, count, 2):
            d["k"] = i
            if d["k"] != i: raise RuntimeError("wrong value")
        if r: seq.append(count / (time.perf_counter() - t0))
    d["sequential"] = median(seq)

def increments(v, times, rounds, barrier, stamps, slot):
    lock = v.get_lock()
    for _ in range(rounds):
        barrier.wait()
        t0 = time.perf_counter()
        for _ in range(times):
            with lock:
                v.value += 1
        stamps[2 * slot] = t0; stamps[2 * slot + 1] = time.perf_counter()
        barrier.wait()

def echo(a, b):
    while True:
        x = a.get()
        if x < 0: return
        b.put(x)

def producer(queues, go, n, rounds):
    for q in queues:
        for r in range(rounds):
            go.get()
            q.put(time.perf_counter())
            for i in range(warm_up(n) if r == 0 else n): q.put(i)

def main():
    which = set(sys.argv[1].split(","))
    n_rt, n_lock, n_inc, n_q, runs, contenders, n_pp = map(int, sys.argv[2:9])
    ctx = mp.get_context("spawn")
    out = {}
    if "manager" in which:
        with ctx.Manager() as m:
            d = m.dict()
            p = ctx.Process(target=round_trips, args=(d, n_rt, runs)); p.start(); p.join()
            out["manager"] = d["sequential"]
    if "locks" in which:
        lock = ctx.Lock(); xs = []
        for r in range(runs + 1):
            t0 = time.perf_counter()
            for _ in range(n_lock):
                lock.acquire(); lock.release()
            if r: xs.append(n_lock / (time.perf_counter() - t0))
        out["lock"] = median(xs)
        v = ctx.Value("i", 0); barrier = ctx.Barrier(contenders + 1)
        stamps = ctx.Array("d", 2 * contenders, lock=False); total = contenders * n_inc
        ps = [ctx.Process(target=increments, args=(v, n_inc, runs + 1, barrier, stamps, s)) for s in range(contenders)]
        for p in ps: p.start()
        xs = []; wrong = []
        for r in range(runs + 1):
            barrier.wait(); barrier.wait()
            if v.value != total: wrong.append(v.value)
            v.value = 0
            span = max(stamps[1::2]) - min(stamps[0::2])
            if r: xs.append(total / span)
        for p in ps: p.join()
        out["contended"] = median(xs); out["contended_wrong"] = wrong
    if "queue" in which:
        queues = {"Queue": ctx.Queue(), "SimpleQueue": ctx.SimpleQueue()}; go = ctx.SimpleQueue()
        p = ctx.Process(target=producer, args=(list(queues.values()), go, n_q, runs + 1)); p.start()
        for name, q in queues.items():
            xs = []
            for r in range(runs + 1):
                count = warm_up(n_q) if r == 0 else n_q
                go.put(r); t0 = q.get()
                for _ in range(count): q.get()
                if r: xs.append(count / (time.perf_counter() - t0))
            out[name] = median(xs)
        p.join()
        a, b = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=echo, args=(a, b)); p.start(); xs = []
        for r in range(runs + 1):
            t0 = time.perf_counter()
            for i in range(n_pp):
                a.put(i)
                if b.get() != i: raise RuntimeError("wrong item back")
            if r: xs.append(n_pp / (time.perf_counter() - t0))
        a.put(-1); p.join()
        out["round_trip"] = median(xs)
    print(json.dumps(out))

if __name__ == "__main__": main()
`;

/** The figures of the script, by task. */
export interface PythonShared {
  manager?: number;
  lock?: number;
  contended?: number;
  contended_wrong?: number[];
  Queue?: number;
  SimpleQueue?: number;
  round_trip?: number;
}

/** Runs the CPython side of `suites`; undefined when python3 is missing or fails. */
export function pythonShared(suites: string[], counts: SharedCounts): { result?: PythonShared; error?: string } {
  const args = [
    counts.manager,
    counts.lock,
    counts.increments,
    counts.queue,
    counts.runs,
    CONTENDERS,
    counts.roundTrips,
  ].map(String);
  const result = runPython(pythonScript, [suites.join(","), ...args]);
  const error = pythonFailure(result);
  if (error) return { error };
  try {
    return { result: JSON.parse(result.stdout.trim().split("\n").pop()!) };
  } catch {
    return { error: "unreadable output" };
  }
}

/** The CPython rows of `suite` from the script's output. */
export function pythonRows(suite: string, py: PythonShared): Row[] {
  const row = (task: string, value: number | undefined, unit: string, note?: string): Row[] =>
    value === undefined ? [] : [{ suite, name: CPYTHON, task, value, unit, note }];
  if (suite === "manager") return row("sequential set/get, each awaited", py.manager, "calls/s");
  if (suite === "locks") {
    const wrong = py.contended_wrong ?? [];
    return [
      ...row(PY_UNCONTENDED, py.lock, "pairs/s", py.lock ? nsNote(py.lock) : undefined),
      ...row(
        CONTENDED,
        py.contended,
        "increments/s",
        wrong.length ? `WRONG COUNT: ${wrong.join(", ")}` : "count exact",
      ),
    ];
  }
  return [
    ...row("Queue", py.Queue, "items/s"),
    ...row("SimpleQueue", py.SimpleQueue, "items/s"),
    ...row(ROUND_TRIP, py.round_trip, "round trips/s", py.round_trip ? perOp(py.round_trip, "each") : undefined),
  ];
}
