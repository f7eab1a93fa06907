// Fault injection: workers that crash mid-task, exactly-once delivery under crashes, the retries
// option, and a chaos loop that SIGKILLs workers from outside.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Pool, ProcessPoolExecutor, SharedArray, WorkerCrashedError } from "multiprocessing-ts";
import { crashSome, doubleWithPid, useRuns } from "./fixtures/chaos-tasks.ts";
import { methods } from "./helpers.ts";

const N = 20_000;
const EVERY = 1_000;

for (const method of methods) {
  describe(`exactly once under crashes (${method})`, { timeout: 120_000 }, () => {
    test(`${N} tasks, every ${EVERY}th crashes its worker: each result arrives once, only those fail`, async () => {
      const runs = new SharedArray("i", N, { context: method, lock: false });
      await using pool = new Pool({ processes: 2, context: method, initializer: useRuns, initargs: [runs] });
      const outcomes = await Promise.allSettled(Array.from({ length: N }, (_, i) => pool.apply(crashSome, [i, EVERY])));
      let crashed = 0;
      for (let i = 0; i < N; i++) {
        const o = outcomes[i]!;
        if (i % EVERY === 0) {
          assert.equal(o.status, "rejected", `item ${i} should have failed`);
          assert.ok((o as PromiseRejectedResult).reason instanceof WorkerCrashedError);
          crashed++;
        } else {
          assert.deepEqual(o, { status: "fulfilled", value: i * 2 }, `item ${i}`);
        }
        assert.equal(runs[i], 1, `item ${i} ran ${runs[i]} times`);
      }
      assert.equal(crashed, N / EVERY);
    });

    test("with retries: 1 every task completes; a crashed one ran twice, the others once", async () => {
      const runs = new SharedArray("i", N, { context: method, lock: false });
      await using pool = new Pool({
        processes: 2,
        context: method,
        initializer: useRuns,
        initargs: [runs],
        retries: 1,
      });
      const results = await Promise.all(Array.from({ length: N }, (_, i) => pool.apply(crashSome, [i, EVERY])));
      for (let i = 0; i < N; i++) {
        assert.equal(results[i], i * 2);
        assert.equal(runs[i], i % EVERY === 0 ? 2 : 1, `item ${i}`);
      }
    });

    test("ProcessPoolExecutor with retries runs a crashed call again", async () => {
      const runs = new SharedArray("i", 10, { context: method, lock: false });
      await using ex = new ProcessPoolExecutor({
        maxWorkers: 2,
        context: method,
        initializer: useRuns,
        initargs: [runs],
        retries: 2,
      });
      assert.equal(await ex.submit(crashSome, 0, 1).result(), 0);
      assert.equal(runs[0], 2);
    });
  });
}

describe("chaos: workers SIGKILLed from outside (spawn)", { timeout: 120_000 }, () => {
  test("every task returns exactly once or fails with WorkerCrashedError; with retries all complete", async () => {
    for (const retries of [0, 3]) {
      const runs = new SharedArray("i", N, { context: "spawn", lock: false });
      await using pool = new Pool({ processes: 2, context: "spawn", initializer: useRuns, initargs: [runs], retries });
      let settled = 0;
      let kills = 0;
      const seen = new Set<number>();
      const calls = Array.from({ length: N }, (_, i) =>
        pool.apply(doubleWithPid, [i]).then(
          ([value, pid]) => {
            assert.equal(value, i * 2);
            assert.ok(!seen.has(i), `item ${i} settled twice`);
            seen.add(i);
            // every 2 000 results, kill the worker that produced this one (it is busy with the next tasks)
            if (++settled % 2_000 === 0 && kills < 5) {
              kills++;
              try {
                process.kill(pid, "SIGKILL");
              } catch {}
            }
            return value;
          },
          (error) => {
            assert.ok(error instanceof WorkerCrashedError, String(error));
            assert.ok(!seen.has(i), `item ${i} settled twice`);
            seen.add(i);
            settled++;
            return undefined;
          },
        ),
      );
      const results = await Promise.all(calls);
      assert.equal(seen.size, N);
      assert.ok(kills > 0);
      if (retries > 0)
        assert.ok(
          results.every((v, i) => v === i * 2),
          "with retries every task completes",
        );
    }
  });
});
