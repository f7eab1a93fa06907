// Scheduling under every start method: no call waits behind another while a worker is free (a
// job sent ahead to a busy worker moves to the one that becomes free), a future is "running" only
// once a worker has started it, cancelling during start-up leaves the pool usable, a call sent to
// a worker that had already died runs elsewhere, and an executor call that hangs has a way out.
// CPython's executor has one shared call queue, so its futures never wait behind one another.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { ProcessError, TimeoutError, WorkerCrashedError, getContext } from "multiprocessing-ts";
import { gated, pidOf, spin, square } from "./fixtures/tasks.ts";
import { exitOnRelease, hang, mark, waitForGate } from "./fixtures/sched-tasks.ts";
import { gone, methods, runScript } from "./helpers.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const fallback = process.env.MULTIPROCESSING_TS_NO_NATIVE === "1";

/** `promise`'s value, or a failure naming `what` if it is not settled within `ms` (a hang guard). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `${what} within ${ms} ms` })), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

for (const method of methods) {
  const ctx = getContext(method);

  describe(`no call waits behind another while a worker is free (${method})`, { timeout: 120_000 }, () => {
    test("Pool: short calls submitted after a long one all finish while it runs", async () => {
      await using pool = new ctx.Pool(2);
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      // short tasks measured first: the pool then sends jobs ahead to busy workers
      await pool.map(square, range(64), { chunksize: 1 });
      const long = pool.apply(gated, [started, release, -1]);
      await started.get({ timeout: 20_000 });
      const shorts = range(6).map((i) => pool.apply(square, [i]));
      assert.deepEqual(
        await within(Promise.all(shorts), 20_000, "the short calls finish while the long one runs"),
        range(6).map((i) => i * i),
      );
      await release.put(0);
      assert.equal(await long, -1);
    });

    test("executor: a future waiting for a worker is not running and can be cancelled", async () => {
      await using ex = new ctx.ProcessPoolExecutor({ maxWorkers: 2 });
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      assert.equal((await ex.map(square, range(64))).length, 64);
      const first = ex.submit(gated, started, release, 1);
      const second = ex.submit(gated, started, release, 2);
      await started.get({ timeout: 20_000 });
      await started.get({ timeout: 20_000 });
      assert.equal(first.running(), true);
      assert.equal(second.running(), true);
      // both workers are busy: these wait, whether queued or sent ahead
      const waiting = range(4).map((i) => ex.submit(square, i));
      assert.deepEqual(
        waiting.map((f) => f.running()),
        [false, false, false, false],
      );
      assert.equal(waiting[0]!.cancel(), true, "a call no worker has started can be cancelled");
      assert.equal(waiting[0]!.cancelled(), true);
      await release.put(0); // one of the two gated calls ends; the other one keeps its worker
      const rest = waiting.slice(1).map((f) => f.result());
      assert.deepEqual(await within(Promise.all(rest), 20_000, "the waiting calls run on the free worker"), [1, 4, 9]);
      await release.put(0);
      assert.deepEqual((await Promise.all([first.result(), second.result()])).sort(), [1, 2]);
    });
  });

  describe(`cancelling while workers start leaves the pool usable (${method})`, { timeout: 120_000 }, () => {
    // The initializer holds every worker in start-up until the gate is set.
    const starting = (options: { maxTasksPerChild?: number } = {}) => {
      const gate = new ctx.Event();
      const pool = new ctx.Pool({ processes: 2, initializer: waitForGate, initargs: [gate], ...options });
      return { gate, pool };
    };

    test("map aborted by its signal, apply by its timeout; later calls run", async () => {
      const { gate, pool } = starting();
      after(() => pool.terminate());
      const c = new AbortController();
      const map = pool.map(spin, [1, 1, 1, 1], { signal: c.signal, chunksize: 1 });
      c.abort();
      await assert.rejects(map, { name: "AbortError" });
      await assert.rejects(pool.apply(spin, [1], { timeout: 50 }), TimeoutError);
      gate.set();
      assert.equal(await pool.apply(square, [3]), 9);
      assert.deepEqual(await pool.map(square, [1, 2, 3]), [1, 4, 9]);
    });

    test("with maxTasksPerChild: 1, and an executor's call with a timeout", async () => {
      const { gate, pool } = starting({ maxTasksPerChild: 1 });
      after(() => pool.terminate());
      const c = new AbortController();
      const calls = [pool.apply(square, [1], { signal: c.signal }), pool.apply(square, [2], { signal: c.signal })];
      c.abort();
      for (const call of calls) await assert.rejects(call, { name: "AbortError" });
      gate.set();
      assert.deepEqual(await pool.map(square, [1, 2, 3, 4], { chunksize: 1 }), [1, 4, 9, 16]);

      const exGate = new ctx.Event();
      await using ex = new ctx.ProcessPoolExecutor({ maxWorkers: 1, initializer: waitForGate, initargs: [exGate] });
      await assert.rejects(ex.submitWith({ timeout: 50 }, square, 2).result(), TimeoutError);
      exGate.set();
      assert.equal(await ex.submit(square, 5).result(), 25);
    });
  });

  describe(`a call sent to a worker already dead runs elsewhere (${method})`, { timeout: 120_000 }, () => {
    test("a worker killed while idle: the call sent before its exit was noticed succeeds", {
      skip:
        (method === "thread" && "a thread cannot be killed from outside while it idles") ||
        (fallback && "without shared memory a call sent counts as started"),
    }, async () => {
      await using pool = new ctx.Pool(1);
      const pid = await pool.apply(pidOf, [0]);
      process.kill(pid, "SIGKILL");
      // sent now, before this process can have seen the exit
      const call = pool.apply(square, [7]);
      assert.equal(await call, 49);
      assert.equal(await gone(pid, 10_000), true);
    });

    test("only the call a crashed worker had started fails; the calls behind it run", async () => {
      await using pool = new ctx.Pool(1);
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      await pool.map(square, range(64), { chunksize: 1 });
      const crashing = pool.apply(exitOnRelease, [started, release]);
      await started.get({ timeout: 20_000 });
      const behind = range(3).map((i) => pool.apply(square, [i]));
      await release.put(0);
      await assert.rejects(crashing, (e: Error) => e instanceof WorkerCrashedError && /code 5/.test(e.message));
      assert.deepEqual(await Promise.all(behind), [0, 1, 4]);
    });
  });

  describe(`an executor call that hangs has a way out (${method})`, { timeout: 120_000 }, () => {
    test("submitWith: a timeout or an abort fails the future and replaces the worker", async () => {
      await using ex = new ctx.ProcessPoolExecutor({ maxWorkers: 1 });
      const started = new ctx.Queue<number>();
      const ran = new ctx.Queue<number>();
      assert.equal(await ex.submit(square, 3).result(), 9);
      const stopHung = new AbortController();
      const hung = ex.submitWith({ signal: stopHung.signal }, hang, started);
      const stopQueued = new AbortController();
      const queued = ex.submitWith({ signal: stopQueued.signal }, mark, ran, 1);
      await started.get({ timeout: 20_000 });
      assert.equal(hung.running(), true);
      assert.equal(queued.running(), false);
      stopQueued.abort();
      await assert.rejects(queued.result(), { name: "AbortError" });
      stopHung.abort();
      await assert.rejects(hung.result(), { name: "AbortError" });
      assert.equal(await ex.submit(mark, ran, 2).result(), 2);
      assert.equal(await ran.get({ timeout: 20_000 }), 2, "the aborted call never ran");
      await assert.rejects(ex.submitWith({ timeout: 100 }, hang, new ctx.Queue<number>()).result(), TimeoutError);
      assert.equal(await ex.submit(square, 4).result(), 16);
      await assert.rejects(ex.submitWith({ signal: AbortSignal.abort() }, square, 1).result(), { name: "AbortError" });
      assert.throws(() => ex.submitWith(null as never, square, 1), /options must be an object/);
      assert.throws(() => ex.submitWith({ timeout: -1 }, square, 1), RangeError);
    });

    test("terminateWorkers and killWorkers end hung calls", async () => {
      for (const stop of ["terminateWorkers", "killWorkers"] as const) {
        const ex = new ctx.ProcessPoolExecutor({ maxWorkers: 1 });
        const started = new ctx.Queue<number>();
        const hung = ex.submit(hang, started);
        await started.get({ timeout: 20_000 });
        await assert.rejects(hung.result(100), TimeoutError);
        assert.equal(hung.cancel(), false);
        await ex[stop]();
        await assert.rejects(hung.result(), ProcessError);
        assert.throws(() => ex.submit(square, 1), /after shutdown/);
      }
    });

    test("shutdown({ wait: false }) does not keep the program alive", async () => {
      const lines: string[] = [];
      const result = await runScript("./fixtures/executor-hung.ts", [method], (line) => lines.push(line), 30_000);
      assert.equal(result.code, 0, `the program did not end by itself: ${result.stderr}`);
      assert.deepEqual(lines.slice(1), ["TimeoutError", "cancel: false", "shut down, queued cancelled: true"]);
      if (method === "spawn") assert.equal(await gone(Number(lines[0]), 10_000), true, "the worker ended with it");
    });
  });
}
