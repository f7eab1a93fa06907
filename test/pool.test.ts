// Pool under every start method. Ported from CPython's _TestPool where it applies (map, starmap,
// apply_async, imap, imap_unordered, chunksize, callbacks, terminate, maxtasksperchild), plus the
// crash cases CPython's Pool hangs on.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  BrokenProcessPool,
  Pool,
  ProcessError,
  Queue,
  SerializationError,
  TimeoutError,
  WorkerCrashedError,
  getContext,
} from "multiprocessing-ts";
import {
  add,
  asyncRange,
  dieOn,
  failOn,
  failingInit,
  gated,
  identity,
  init,
  killSelfOn,
  naturals,
  pidOf,
  readInit,
  sleepThen,
  spin,
  square,
  throwOutsideTask,
  throwsAfter,
  unsendableResult,
} from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

for (const method of methods) {
  describe(`Pool (${method})`, { timeout: 120_000 }, () => {
    const ctx = getContext(method);
    const pool: Pool = new ctx.Pool(2);
    after(() => pool.terminate());

    test("map, starmap, apply, applyAsync, mapAsync, starmapAsync", async () => {
      assert.deepEqual(
        await pool.map(square, range(10)),
        range(10).map((x) => x * x),
      );
      assert.deepEqual(await pool.map(square, []), []);
      assert.deepEqual(
        await pool.starmap(add, [
          [1, 2],
          [3, 4],
        ]),
        [3, 7],
      );
      assert.equal(await pool.apply(square, [12]), 144);
      const r = pool.applyAsync(square, [10]);
      assert.equal(await r.get(20_000), 100);
      assert.equal(r.ready(), true);
      assert.equal(r.successful(), true);
      assert.deepEqual(await pool.mapAsync(square, new Set([1, 2, 3])).get(), [1, 4, 9]);
      assert.deepEqual(await pool.starmapAsync(add, [[5, 5]]).get(), [10]);
      assert.deepEqual(await pool.map(square, asyncRange(5)), [0, 1, 4, 9, 16], "async iterables");
    });

    test("chunksize keeps order, large inputs use default chunking", async () => {
      assert.deepEqual(
        await pool.map(square, range(50), { chunksize: 7 }),
        range(50).map((x) => x * x),
      );
      const big = await pool.map(identity, range(100_000));
      assert.equal(big.length, 100_000);
      assert.equal(big[99_999], 99_999);
      await assert.rejects(pool.map(square, [1], { chunksize: 0 }), RangeError);
    });

    test("imap is ordered and lazy; imapUnordered yields as tasks finish", async () => {
      const ordered: number[] = [];
      for await (const y of pool.imap(square, range(30), { chunksize: 4 })) ordered.push(y);
      assert.deepEqual(
        ordered,
        range(30).map((x) => x * x),
      );
      const firstTen: number[] = [];
      for await (const y of pool.imap(square, naturals())) {
        firstTen.push(y);
        if (firstTen.length === 10) break;
      }
      assert.deepEqual(
        firstTen,
        range(10).map((x) => x * x),
        "an infinite input is pulled lazily",
      );
      const started = new Queue<number>();
      const release = new Queue<number>();
      const seen: number[] = [];
      const items = [0, 1].map((i) => [started, release, i] as const);
      for await (const y of pool.imapUnordered((x: number) => x, [5, 6])) seen.push(y);
      assert.deepEqual(seen.sort(), [5, 6]);
      // A task blocked on a gate does not hold back the others.
      const unordered = pool.starmapAsync(gated, items);
      await started.get({ timeout: 20_000 });
      await started.get({ timeout: 20_000 });
      await release.put(0);
      await release.put(0);
      assert.deepEqual((await unordered.get()).sort(), [0, 1]);
    });

    test("an input that throws yields the results before it, then its error; the pool goes on", async () => {
      const got: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const y of pool.imap(identity, throwsAfter(5))) got.push(y);
        })(),
        /input broke/,
      );
      assert.deepEqual(got, [0, 1, 2, 3, 4]);
      await assert.rejects(pool.map(identity, throwsAfter(3)), /input broke/);
      assert.deepEqual(await pool.map(identity, [1, 2]), [1, 2]);
    });

    test("a task's error rejects its call with the same class; other calls go on", async () => {
      await assert.rejects(pool.map(failOn, range(10)), (error: Error) => {
        assert.ok(error instanceof RangeError);
        assert.equal(error.message, "bad item 5");
        assert.match(String(error.stack), /failOn/);
        return true;
      });
      const r = pool.applyAsync(failOn, [5]);
      await r.wait();
      assert.equal(r.successful(), false);
      await assert.rejects(r.get(), RangeError);
      assert.deepEqual(await pool.map(square, [3]), [9]);
    });

    test("callbacks and errorCallback", async () => {
      const results: unknown[] = [];
      await pool.applyAsync(square, [4], { callback: (v) => results.push(v) }).wait();
      await pool.mapAsync(square, [1, 2], { callback: (v) => results.push(v) }).wait();
      await pool.applyAsync(failOn, [5], { errorCallback: (e) => results.push((e as Error).message) }).wait();
      assert.deepEqual(results, [16, [1, 4], "bad item 5"]);
    });

    test("AsyncResult.get(timeout) rejects with TimeoutError; successful() before ready throws", async () => {
      const r = pool.applyAsync(sleepThen, [400, "late"]);
      assert.throws(() => r.successful(), /not ready/);
      await assert.rejects(r.get(50), TimeoutError);
      assert.equal(await r.get(), "late");
    });

    test("{ timeout } and { signal } cancel a call; a busy worker is replaced", async () => {
      await assert.rejects(pool.apply(spin, [60_000], { timeout: 200 }), TimeoutError);
      const controller = new AbortController();
      const pending = pool.map(spin, [60_000, 60_000], { signal: controller.signal, chunksize: 1 });
      setImmediate(() => controller.abort(new Error("stop")));
      await assert.rejects(pending, /stop/);
      assert.deepEqual(await pool.map(square, [2, 3]), [4, 9], "the pool still works");
    });

    test("onProgress reports done and total", async () => {
      const calls: [number, number | undefined][] = [];
      await pool.map(identity, range(10), { chunksize: 3, onProgress: (d, t) => calls.push([d, t]) });
      assert.deepEqual(calls.at(-1), [10, 10]);
      assert.equal(calls.length, 4);
    });

    test("imap and imapUnordered report the input's length as total, when it is known", async () => {
      for (const stream of [pool.imap.bind(pool), pool.imapUnordered.bind(pool)]) {
        const inputs: [Iterable<number> | AsyncIterable<number>, number | undefined][] = [
          [range(10), 10],
          [new Set(range(10)), 10],
          [new Int32Array(10), 10],
          [range(10).values(), undefined],
          [asyncRange(10), undefined],
        ];
        for (const [items, total] of inputs) {
          const calls: [number, number | undefined][] = [];
          for await (const _ of stream(identity, items, { chunksize: 3, onProgress: (d, t) => calls.push([d, t]) }));
          assert.equal(calls.length, 4);
          assert.deepEqual(calls.at(-1), [10, total]);
          assert.ok(
            calls.every(([, t]) => t === total),
            `every total is ${total}: ${JSON.stringify(calls)}`,
          );
        }
      }
    });

    test("a worker that exits mid-task fails only its task, and is replaced", async () => {
      const settled = await Promise.allSettled([1, 2, 3, 4, 5].map((x) => pool.apply(dieOn, [x])));
      const failed = settled.filter((s) => s.status === "rejected");
      assert.equal(failed.length, 1);
      const reason = (failed[0] as PromiseRejectedResult).reason;
      assert.ok(reason instanceof WorkerCrashedError);
      assert.equal(reason.exitCode, 7);
      assert.match(reason.message, /code 7/);
      if (method === "spawn") {
        // (a thread cannot be killed alone by a signal: SIGKILL would end the whole program)
        const killed = await Promise.allSettled([1, 3, 5].map((x) => pool.apply(killSelfOn, [x])));
        const reasons = killed.filter((s) => s.status === "rejected").map((s) => (s as PromiseRejectedResult).reason);
        assert.equal(reasons.length, 1);
        assert.equal(reasons[0].signal, "SIGKILL");
      }
      assert.deepEqual(await pool.map(square, [1, 2, 3]), [1, 4, 9]);
    });

    test("an error thrown outside any task crashes the worker; no task is lost", async () => {
      const outcome = await Promise.allSettled([pool.apply(throwOutsideTask, []), pool.apply(square, [5])]);
      assert.deepEqual(
        outcome.map((o) => o.status === "fulfilled" && o.value),
        [1, 25],
      );
      assert.deepEqual(await pool.map(square, [6]), [36]);
    });

    test("arguments that cannot travel are refused at call time; results that cannot are task errors", async () => {
      await assert.rejects(pool.apply(identity, [{ onDone: () => 1 }]), (error: Error) => {
        assert.ok(error instanceof SerializationError);
        assert.match(error.message, /onDone is a function/);
        return true;
      });
      await assert.rejects(pool.apply(unsendableResult, []), SerializationError);
      const factor = 2;
      await assert.rejects(
        pool.map((x: number) => x * factor, [1]),
        /'factor'/,
      );
      assert.deepEqual(await pool.map((x: number) => x + 1, [1, 2]), [2, 3], "self-contained lambdas go by source");
    });

    test("functions a CommonJS module exports reach workers by name, an anonymous one by its key", async () => {
      const { default: tasks } = (await import(
        new URL("./fixtures/commonjs/plain-tasks.cjs", import.meta.url).href
      )) as {
        default: { addOffset: (x: number) => number; scaled: (x: number) => number };
      };
      await using pool = new ctx.Pool(1);
      assert.deepEqual(await pool.map(tasks.addOffset, [1, 2]), [101, 102]);
      assert.equal(await pool.apply(tasks.scaled, [3]), 300);
    });

    test("a CommonJS program's own export reaches workers while the program is still running", async () => {
      const script = fileURLToPath(new URL("./fixtures/commonjs/main-script.cjs", import.meta.url));
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, method], { timeout: 60_000 });
      assert.equal(stdout.trim(), "[8,9,10]", stderr);
    });
  });

  describe(`Pool lifecycle (${method})`, { timeout: 120_000 }, () => {
    const ctx = getContext(method);

    test("initializer runs in every worker; maxTasksPerChild replaces workers", async () => {
      await using pool = new ctx.Pool({ processes: 1, initializer: init, initargs: ["yes"], maxTasksPerChild: 2 });
      assert.deepEqual(await pool.map(readInit, [0, 1, 2], { chunksize: 1 }), ["yes", "yes", "yes"]);
      if (method === "spawn") {
        const pids = await pool.map(pidOf, range(4), { chunksize: 1 });
        assert.ok(new Set(pids).size >= 2, "a worker retires after maxTasksPerChild tasks");
      }
    });

    test("a failing initializer breaks the pool with BrokenProcessPool", async () => {
      await using pool = new ctx.Pool({ processes: 1, initializer: failingInit });
      await assert.rejects(pool.map(square, [1]), BrokenProcessPool);
    });

    test("close then join finishes the submitted work; terminate rejects pending work", async () => {
      const pool = new ctx.Pool(2);
      const work = pool.map(square, range(20), { chunksize: 1 });
      pool.close();
      await assert.rejects(pool.map(square, [1]), /not running/);
      await pool.join();
      assert.equal((await work).length, 20);

      const other = new ctx.Pool(1);
      const pending = assert.rejects(other.map(spin, [60_000]), ProcessError);
      await assert.rejects(other.join(), /still running/);
      const t0 = performance.now();
      await other.terminate();
      await pending;
      assert.ok(performance.now() - t0 < 5000, "terminating a busy pool returns promptly");
    });

    test("bad options are refused with the option's name", () => {
      assert.throws(
        () => new ctx.Pool(0),
        (e: Error) => e instanceof RangeError && /processes/.test(e.message),
      );
      assert.throws(() => new ctx.Pool(-1), RangeError);
      assert.throws(() => new ctx.Pool(1.5), TypeError);
      assert.throws(() => new ctx.Pool({ maxTasksPerChild: 0 }), /maxTasksPerChild/);
      assert.throws(() => new ctx.Pool({ initializer: 5 as never }), /initializer/);
      assert.throws(() => new ctx.Pool({ processes: 1, context: "fork" as never }), /cannot fork/);
    });
  });
}

describe("types flow from the function", () => {
  test("compile-time checks (see npm run check)", async () => {
    await using pool = new Pool({ processes: 1, context: "thread" });
    const squares: number[] = await pool.map(square, [1, 2]);
    const sums: number[] = await pool.starmap(add, [[1, 2]]);
    const text: string = await pool.apply(identity<string>, ["x"]);
    // @ts-expect-error starmap checks argument tuples
    void pool.starmap(add, [["a", 2]]).catch(() => {});
    // @ts-expect-error apply checks the argument list
    void pool.apply(square, ["x"]).catch(() => {});
    assert.deepEqual([squares, sums, text], [[1, 4], [3], "x"]);
  });
});
