// Introspection under every start method: pool.stats() and executor.stats() (queued, running,
// completed, failed, utilization, each worker's pid and state, as piscina reports them), the
// Pool's util.inspect agreeing with them, and activeChildren() listing pool workers, as Python's
// active_children() does. Tasks wait on queues, so they are running for sure while stats are read.
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, test } from "node:test";
import { activeChildren, getContext } from "multiprocessing-ts";
import { failOn, gated } from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

for (const method of methods) {
  describe(`stats and activeChildren (${method})`, { timeout: 120_000 }, () => {
    const ctx = getContext(method);

    test("pool.stats() counts queued, running, completed and failed tasks and names each worker", async () => {
      await using pool = new ctx.Pool(2);
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      const fresh = pool.stats();
      assert.deepEqual([fresh.queued, fresh.running, fresh.completed, fresh.failed], [0, 0, 0, 0]);
      assert.equal(fresh.workers.length, 2);

      const results = [0, 1, 2].map((i) => pool.applyAsync(gated, [started, release, i]));
      const first = [await started.get(), await started.get()];
      let s = pool.stats();
      assert.deepEqual([s.queued, s.running, s.completed, s.failed], [1, 2, 0, 0]);
      assert.deepEqual(
        s.workers.map((w) => w.state),
        ["busy", "busy"],
      );
      assert.match(inspect(pool), /queued: 1, running: 2 }/);
      const pids = s.workers.map((w) => w.pid!);
      for (const pid of pids) assert.ok(Number.isInteger(pid) && pid > 0);
      if (method === "spawn") assert.ok(!pids.includes(process.pid) && pids[0] !== pids[1]);
      else assert.deepEqual(pids, [process.pid, process.pid]);
      assert.deepEqual(
        s.workers.map((w) => w.name),
        ["PoolWorker-1", "PoolWorker-2"],
      );

      // one finishes, and its worker starts the queued one
      await release.put(0);
      await Promise.race(first.map((i) => results[i]!.get()));
      const third = await started.get();
      assert.equal(third, 2);
      s = pool.stats();
      assert.deepEqual([s.queued, s.running, s.completed, s.failed], [0, 2, 1, 0]);

      await release.put(0);
      await release.put(0);
      assert.deepEqual(await Promise.all(results.map((r) => r.get())), [0, 1, 2]);
      await assert.rejects(pool.apply(failOn, [5]), RangeError);
      s = pool.stats();
      assert.deepEqual([s.queued, s.running, s.completed, s.failed], [0, 0, 3, 1]);
      assert.deepEqual(
        s.workers.map((w) => w.state),
        ["idle", "idle"],
      );
      assert.equal(
        s.workers.reduce((n, w) => n + w.completed, 0),
        4,
      );
      assert.ok(s.utilization > 0 && s.utilization <= 1, `utilization ${s.utilization}`);
      assert.match(inspect(pool), /queued: 0, running: 0 }/);
    });

    test("activeChildren() lists the pool's workers as daemon Processes, until the pool ends", async () => {
      const pool = new ctx.Pool(2);
      const listed = () => activeChildren().filter((p) => p.name.startsWith("PoolWorker-"));
      const workers = listed();
      assert.equal(workers.length, 2);
      assert.deepEqual(
        workers.map((p) => [p.name, p.pid, p.daemon, p.isAlive(), p.exitcode]),
        pool.stats().workers.map((w) => [w.name, w.pid, true, true, null]),
      );
      assert.deepEqual(listed(), workers, "the same worker is the same object");
      await pool.terminate();
      assert.deepEqual(listed(), []);
      assert.deepEqual(pool.stats().workers, []);
      for (const p of workers) {
        await p.join();
        assert.equal(p.isAlive(), false);
        assert.equal(p.exitcode, -9);
      }
    });

    test("executor.stats() and activeChildren() see its workers", async () => {
      await using ex = new ctx.ProcessPoolExecutor({ maxWorkers: 1 });
      assert.deepEqual(ex.stats().workers, [], "no worker before the first call");
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      const futures = [ex.submit(gated, started, release, 1), ex.submit(gated, started, release, 2)];
      assert.equal(await started.get(), 1);
      let s = ex.stats();
      assert.deepEqual([s.queued, s.running, s.completed, s.failed], [1, 1, 0, 0]);
      assert.deepEqual(
        s.workers.map((w) => [w.name, w.state]),
        [["ExecutorWorker-1", "busy"]],
      );
      assert.deepEqual(
        activeChildren()
          .filter((p) => p.name.startsWith("ExecutorWorker-"))
          .map((p) => p.pid),
        [s.workers[0]!.pid],
      );
      await release.put(0);
      await release.put(0);
      assert.deepEqual(await Promise.all(futures.map((f) => f.result())), [1, 2]);
      s = ex.stats();
      assert.deepEqual([s.queued, s.running, s.completed, s.failed], [0, 0, 2, 0]);
      assert.ok(s.utilization > 0 && s.utilization <= 1, `utilization ${s.utilization}`);
    });
  });
}
