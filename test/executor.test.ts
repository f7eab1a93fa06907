// ProcessPoolExecutor, Future, wait and asCompleted under every start method. Ported from CPython's
// test_concurrent_futures where it applies (futures' states, cancel, wait, as_completed timeout,
// shutdown with cancel_futures, broken initializer).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  BrokenProcessPool,
  CancelledError,
  type Future,
  type ProcessPoolExecutor,
  Queue,
  TimeoutError,
  WorkerCrashedError,
  asCompleted,
  getContext,
  wait,
} from "multiprocessing-ts";
import { dieOn, failOn, failingInit, gated, identity, sleepThen, square, throwRich } from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

for (const method of methods) {
  describe(`ProcessPoolExecutor (${method})`, { timeout: 120_000 }, () => {
    const ctx = getContext(method);
    const ex: ProcessPoolExecutor = new ctx.ProcessPoolExecutor({ maxWorkers: 2 });
    after(() => ex.shutdown());

    test("submit, result, exception, states and done callbacks", async () => {
      const f = ex.submit(square, 7);
      const calls: boolean[] = [];
      f.addDoneCallback((x) => calls.push(x.done()));
      assert.equal(await f.result(), 49);
      assert.equal(await f.exception(), undefined);
      assert.equal(f.done(), true);
      assert.equal(f.running(), false);
      assert.equal(f.cancel(), false, "a finished future cannot be cancelled");
      f.addDoneCallback((x) => calls.push(x.done()));
      assert.deepEqual(calls, [true, true]);
      const bad = ex.submit(throwRich);
      const error = (await bad.exception()) as RangeError & { code: string };
      assert.ok(error instanceof RangeError);
      assert.equal(error.code, "E_RICH");
      await assert.rejects(bad.result(), RangeError);
    });

    test("result(timeout) rejects with TimeoutError and the call goes on", async () => {
      const f = ex.submit(sleepThen, 300, "late");
      await assert.rejects(f.result(20), TimeoutError);
      assert.equal(await f.result(), "late");
    });

    test("map: awaitable and streamed, ordered, lazy over infinite inputs", async () => {
      assert.deepEqual(await ex.map(square, [1, 2, 3]), [1, 4, 9]);
      const streamed: number[] = [];
      for await (const y of ex.map(square, [4, 5, 6], { chunksize: 2 })) streamed.push(y);
      assert.deepEqual(streamed, [16, 25, 36]);
      function* naturals() {
        for (let i = 0; ; i++) yield i;
      }
      const first: number[] = [];
      for await (const y of ex.map(identity, naturals())) {
        first.push(y);
        if (first.length === 5) break;
      }
      assert.deepEqual(first, [0, 1, 2, 3, 4]);
      await assert.rejects(async () => await ex.map(failOn, [4, 5, 6]), RangeError);
    });

    test("wait: FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED, timeout", async () => {
      const started = new Queue<number>();
      const release = new Queue<number>();
      const blocked = ex.submit(gated, started, release, 1);
      await started.get({ timeout: 20_000 });
      const quick = ex.submit(square, 2);
      let r = await wait([blocked, quick], { returnWhen: "FIRST_COMPLETED" });
      assert.ok(r.done.has(quick) && r.notDone.has(blocked));
      const failing = ex.submit(failOn, 5);
      r = await wait([blocked, failing], { returnWhen: "FIRST_EXCEPTION" });
      assert.ok(r.done.has(failing) && r.notDone.has(blocked));
      r = await wait([blocked], { timeout: 50 });
      assert.ok(r.notDone.has(blocked));
      await release.put(0);
      r = await wait([blocked, quick, failing]);
      assert.equal(r.done.size, 3);
      await assert.rejects(wait([quick], { returnWhen: "SOMETIMES" as never }), TypeError);
    });

    test("asCompleted yields each future once, and times out naming the unfinished", async () => {
      const fs = [ex.submit(square, 1), ex.submit(square, 2)];
      const seen: Future<number>[] = [];
      for await (const f of asCompleted([...fs, fs[0]!])) seen.push(f);
      assert.equal(seen.length, 2);
      const started = new Queue<number>();
      const release = new Queue<number>();
      const blocked = ex.submit(gated, started, release, 1);
      await started.get({ timeout: 20_000 });
      await assert.rejects(
        (async () => {
          for await (const _ of asCompleted([blocked, fs[0]!], 100)) {
          }
        })(),
        (e: Error) => e instanceof TimeoutError && e.message === "1 (of 2) futures unfinished",
      );
      await release.put(0);
      assert.equal(await blocked.result(), 1);
    });

    test("a crashed worker fails only its future; the executor goes on", async () => {
      const futures = [1, 2, 3, 4].map((x) => ex.submit(dieOn, x));
      const errors = await Promise.all(futures.map((f) => f.exception()));
      assert.equal(errors.filter((e) => e instanceof WorkerCrashedError).length, 1);
      assert.equal(await ex.submit(square, 3).result(), 9);
    });
  });

  describe(`ProcessPoolExecutor lifecycle (${method})`, { timeout: 120_000 }, () => {
    const ctx = getContext(method);

    test("shutdown with cancelFutures cancels pending futures; submit afterwards throws", async () => {
      const ex = new ctx.ProcessPoolExecutor({ maxWorkers: 1 });
      const started = new Queue<number>();
      const release = new Queue<number>();
      const first = ex.submit(gated, started, release, 1);
      const queued = [1, 2, 3].map((i) => ex.submit(square, i));
      assert.equal(first.running() || !first.done(), true);
      await started.get({ timeout: 20_000 });
      assert.equal(first.cancel(), false, "a running future cannot be cancelled");
      const stopping = ex.shutdown({ wait: true, cancelFutures: true });
      assert.deepEqual(
        queued.map((f) => f.cancelled()),
        [true, true, true],
      );
      await assert.rejects(queued[0]!.result(), CancelledError);
      await release.put(0);
      await stopping;
      assert.equal(await first.result(), 1);
      assert.throws(() => ex.submit(square, 1), /after shutdown/);
    });

    test("a failing initializer gives BrokenProcessPool", async () => {
      await using ex = new ctx.ProcessPoolExecutor({ maxWorkers: 1, initializer: failingInit });
      const error = await ex.submit(square, 1).exception();
      assert.ok(error instanceof BrokenProcessPool);
      assert.throws(() => ex.submit(square, 2), BrokenProcessPool);
    });

    test("bad options are refused", () => {
      assert.throws(() => new ctx.ProcessPoolExecutor({ maxWorkers: 0 }), /maxWorkers/);
      assert.throws(() => new ctx.ProcessPoolExecutor({ maxTasksPerChild: -1 }), /maxTasksPerChild/);
    });
  });
}
