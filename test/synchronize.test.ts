// Locks, semaphores, events, conditions, barriers and shared values, in one process and across
// processes, under every start method. Ported from CPython's _TestLock, _TestSemaphore, _TestEvent,
// _TestCondition, _TestBarrier and _TestValue/_TestArray where they apply.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, test } from "node:test";
import { BrokenBarrierError, Queue, RawArray, RawValue, SharedArray, getContext } from "multiprocessing-ts";
import {
  barrierWait,
  countTrip,
  fillArray,
  holdLock,
  incrementSync,
  incrementUnderLock,
  passBarrier,
  sumArray,
  tryRelease,
  waitEvent,
  waitOnCondition,
  waitForFlag,
} from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

for (const method of methods) {
  const ctx = getContext(method);

  describe(`Lock, RLock, Semaphore (${method})`, { timeout: 60_000 }, () => {
    test("Lock: acquire, non-blocking attempt, timeout, release", async () => {
      const lock = new ctx.Lock();
      assert.equal(await lock.acquire(), true);
      assert.equal(await lock.acquire({ block: false }), false);
      assert.equal(lock.acquireSync({ block: false }), false);
      const t0 = performance.now();
      assert.equal(await lock.acquire({ timeout: 100 }), false);
      assert.ok(performance.now() - t0 >= 90);
      assert.equal(lock.acquireSync({ timeout: 50 }), false);
      lock.release();
      assert.throws(() => lock.release(), /unlocked/);
      assert.equal(await lock.withLock(() => 7), 7);
      assert.equal(lock.acquireSync(), true);
      lock.release();
    });

    test("Lock: an aborted acquire rejects and leaves the lock as it was", async () => {
      const lock = new ctx.Lock();
      await lock.acquire();
      const controller = new AbortController();
      const pending = lock.acquire({ signal: controller.signal });
      controller.abort(new Error("give up"));
      await assert.rejects(pending, /give up/);
      lock.release();
      assert.equal(await lock.acquire({ block: false }), true);
      lock.release();
    });

    test("Lock: a bad option is refused before acquiring, leaving the lock free", async () => {
      const lock = new ctx.Lock();
      assert.throws(() => lock.acquireSync({ timeout: -1 }), RangeError);
      await assert.rejects(lock.acquire({ timeout: -1 }), RangeError);
      assert.equal(lock.acquireSync({ block: false }), true);
      lock.release();
    });

    test("RLock: its owner may re-acquire; others may not release it", async () => {
      const lock = new ctx.RLock();
      assert.equal(lock.acquireSync(), true);
      assert.equal(lock.acquireSync(), true);
      lock.release();
      const out = new Queue<string>();
      const p = new ctx.Process({ target: tryRelease, args: [lock, out] }).start();
      assert.match(await out.get({ timeout: 20_000 }), /un-acquired/);
      await p.join();
      lock.release();
      assert.throws(() => lock.release(), /un-acquired/);
    });

    test("a lock held in a child blocks the parent until released", async () => {
      const lock = new ctx.Lock();
      const started = new ctx.Event();
      const release = new ctx.Event();
      const p = new ctx.Process({ target: holdLock, args: [lock, started, release] }).start();
      assert.equal(await started.wait(20_000), true);
      assert.equal(await lock.acquire({ block: false }), false);
      release.set();
      assert.equal(await lock.acquire({ timeout: 20_000 }), true);
      lock.release();
      await p.join();
    });

    // each operation is a message in the fallback: fewer rounds keep the run short, the check is the same
    const rounds = process.env.MULTIPROCESSING_TS_NO_NATIVE === "1" ? 200 : 5000;
    test(`four processes adding 1 under a lock ${rounds} times each leave exactly ${4 * rounds}`, async () => {
      const counter = new ctx.Value("i", 0);
      const lock = counter.getLock(); // an RLock: the value's own reads and writes take it again
      const ps = [0, 1].map(() =>
        new ctx.Process({ target: incrementUnderLock, args: [counter, lock, rounds] }).start(),
      );
      const qs = [0, 1].map(() => new ctx.Process({ target: incrementSync, args: [counter, rounds] }).start());
      for (const p of [...ps, ...qs]) await p.join();
      assert.equal(counter.value, 4 * rounds);
    });

    test("Semaphore and BoundedSemaphore", async () => {
      const sem = new ctx.Semaphore(2);
      assert.equal(await sem.acquire(), true);
      assert.equal(sem.acquireSync(), true);
      assert.equal(await sem.acquire({ block: false }), false);
      assert.equal(sem.getValue(), 0);
      sem.release();
      sem.release();
      sem.release();
      assert.equal(sem.getValue(), 3, "a plain semaphore may go above its start value");
      const bounded = new ctx.BoundedSemaphore(1);
      await bounded.acquire();
      bounded.release();
      assert.throws(() => bounded.release(), /too many/);
      assert.throws(() => new ctx.Semaphore(-1), RangeError);
    });
  });

  describe(`Event, Condition, Barrier (${method})`, { timeout: 60_000 }, () => {
    test("Event: set wakes a waiting child; wait(timeout) is false while clear", async () => {
      const event = new ctx.Event();
      assert.equal(event.isSet(), false);
      assert.equal(await event.wait(50), false);
      assert.equal(event.waitSync(20), false);
      const out = new Queue<boolean>();
      const p = new ctx.Process({ target: waitEvent, args: [event, out] }).start();
      event.set();
      assert.equal(await out.get({ timeout: 20_000 }), true);
      await p.join();
      event.clear();
      assert.equal(event.isSet(), false);
    });

    test("Condition: notify wakes a child waiting for a predicate", async () => {
      const cond = new ctx.Condition();
      const flag = new ctx.Value("i", 0);
      const ready = new ctx.Event();
      const out = new Queue<string>();
      const p = new ctx.Process({ target: waitForFlag, args: [cond, flag, ready, out] }).start();
      await ready.wait(20_000);
      await cond.withLock(() => {
        flag.value = 1;
        cond.notifyAll();
      });
      assert.equal(await out.get({ timeout: 20_000 }), "saw the flag");
      await p.join();
      assert.throws(() => cond.notify(), /un-acquired/);
      await cond.acquire();
      assert.equal(await cond.wait(30), false, "wait(timeout) without a notify");
      assert.equal(await cond.waitFor(() => false, 30), false);
      cond.release();
    });

    // CPython's _TestCondition.test_notify and test_notify_n: each notify(n) wakes n of the waiters,
    // and a waiter nobody notified times out (false). Half the waiters use wait(), half waitSync().
    test("Condition: notify() wakes one waiter, notify(n) wakes n, the rest time out", async () => {
      const cond = new ctx.Condition();
      const start = new ctx.Barrier(5);
      const sleeping = new ctx.Semaphore(0);
      const out = new Queue<boolean>();
      // long enough for the notifies below to come first, however slow the machine
      const timeout = 3000;
      const ps = [false, true, false, true].map((sync) =>
        new ctx.Process({ target: waitOnCondition, args: [cond, start, sleeping, sync, timeout, out] }).start(),
      );
      await start.wait(20_000);
      for (const _ of ps) assert.equal(await sleeping.acquire({ timeout: 20_000 }), true);
      await cond.withLock(() => cond.notify());
      const results = [await out.get({ timeout: 20_000 })];
      await cond.withLock(() => cond.notify(2));
      for (let i = 1; i < ps.length; i++) results.push(await out.get({ timeout: 20_000 }));
      assert.deepEqual(results, [true, true, true, false]);
      for (const p of ps) await p.join();
    });

    test("Barrier: every party gets a distinct index; abort and timeout break it; reset mends it", async () => {
      const barrier = new ctx.Barrier(3);
      assert.equal(barrier.parties, 3);
      const out = new Queue<unknown>();
      const ps = [0, 1].map(() => new ctx.Process({ target: barrierWait, args: [barrier, out] }).start());
      const mine = await barrier.wait();
      const theirs = [await out.get({ timeout: 20_000 }), await out.get({ timeout: 20_000 })];
      assert.deepEqual([mine, ...theirs].sort(), [0, 1, 2]);
      for (const p of ps) await p.join();

      const broken = new ctx.Barrier(2);
      const waiter = new ctx.Process({ target: barrierWait, args: [broken, out] }).start();
      while (broken.nWaiting === 0) await new Promise((resolve) => setImmediate(resolve));
      broken.abort();
      assert.equal(await out.get({ timeout: 20_000 }), "BrokenBarrierError");
      await waiter.join();
      assert.equal(broken.broken, true);
      await assert.rejects(broken.wait(), BrokenBarrierError);
      broken.reset();
      assert.equal(broken.broken, false);

      const timed = new ctx.Barrier(2, { timeout: 50 });
      await assert.rejects(timed.wait(), BrokenBarrierError);
      assert.equal(timed.broken, true);

      let ran = 0;
      const withAction = new ctx.Barrier(1, { action: () => ran++ });
      assert.equal(await withAction.wait(), 0);
      assert.equal(ran, 1);
    });

    // CPython's _TestBarrier.test_action: the action runs exactly once per trip, in whichever
    // process arrives last, and before any party is released.
    test("Barrier: an exported action travels with the barrier and runs once per trip, before the release", async () => {
      const barrier = new ctx.Barrier(3, { action: countTrip });
      const counter = new ctx.Value("i", 0);
      const out = new Queue<unknown>();
      const ps = [0, 1].map(() => new ctx.Process({ target: passBarrier, args: [barrier, counter, 2, out] }).start());
      await passBarrier(barrier, counter, 2, out);
      const seen: unknown[] = [];
      for (let i = 0; i < 6; i++) seen.push(await out.get({ timeout: 20_000 }));
      assert.deepEqual(seen.sort(), [1, 1, 1, 2, 2, 2]);
      assert.equal(counter.value, 2);
      for (const p of ps) await p.join();
      const local = (x: number) => x + barrier.parties;
      assert.throws(
        () =>
          new ctx.Process({ target: barrierWait, args: [new ctx.Barrier(2, { action: () => local(1) }), out] }).start(),
        /action.*cannot be sent.*Export it/s,
      );
    });
  });

  describe(`Value and SharedArray (${method})`, { timeout: 60_000 }, () => {
    test("typecodes, bigint for 64-bit, locks", () => {
      const d = new ctx.Value("d", 1.5);
      assert.equal(d.value, 1.5);
      d.value = 2.25;
      assert.equal(d.value, 2.25);
      const q = new ctx.Value("q", 10n);
      q.value += 5n;
      assert.equal(q.value, 15n);
      const b = new ctx.Value("b", 127);
      b.value += 1;
      assert.equal(b.value, -128, "wraps like C");
      assert.ok(d.getLock().acquireSync());
      d.value = 3; // the default lock is recursive
      d.getLock().release();
      assert.throws(() => new ctx.Value("x" as never, 1 as never), /bad typecode/);
      assert.throws(() => new ctx.Value("q", 1 as never), /bigint/);
      assert.throws(() => RawValue("i", 1).getLock(), /no lock/);
      const lock = new ctx.Lock();
      assert.equal(new ctx.Value("i", 0, { lock }).getLock(), lock);
    });

    test("SharedArray indexes like a typed array and children write into it", async () => {
      const arr = new ctx.SharedArray("i", 8);
      assert.ok(arr instanceof Int32Array);
      assert.ok(arr instanceof SharedArray);
      assert.equal(arr.length, 8);
      const ps = [
        new ctx.Process({ target: fillArray, args: [arr, 0, 4] }).start(),
        new ctx.Process({ target: fillArray, args: [arr, 4, 8] }).start(),
      ];
      for (const p of ps) await p.join();
      assert.deepEqual([...arr], [0, 10, 20, 30, 40, 50, 60, 70]);
      const floats = new ctx.SharedArray("d", [1.5, 2.5, 3]);
      await using pool = new ctx.Pool(1);
      assert.equal(await pool.apply(sumArray, [floats]), 7);
      const raw = RawArray("Q", [1n, 2n]);
      assert.equal(raw[1], 2n);
      assert.throws(() => raw.getLock(), /no lock/);
      assert.throws(() => new SharedArray("i", -1), RangeError);
      assert.throws(() => new SharedArray("i", ["a"] as never), TypeError);
    });
  });
}

describe("sharing across start methods", { timeout: 60_000 }, () => {
  test("a thread-context lock cannot be sent to a process, with advice", () => {
    const lock = new (getContext("thread").Lock)();
    assert.throws(
      () => new (getContext("spawn").Process)({ target: tryRelease, args: [lock, new Queue()] }).start(),
      /"thread" start method.*getContext\("spawn"\)/s,
    );
  });

  test("without the native addon, spawn-method primitives still work, through the broker", () => {
    const script = [
      'const { Lock, Value } = await import("multiprocessing-ts");',
      'const lock = new Lock({ context: "spawn" });',
      "console.log(lock.acquireSync(), lock.acquireSync({ block: false }));",
      "lock.release();",
      'const v = new Value("i", 41, { context: "spawn" });',
      "v.value += 1;",
      "console.log(v.value);",
    ].join("\n");
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, MULTIPROCESSING_TS_NO_NATIVE: "1" },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, "true false\n42\n");
  });

  test("shared memory segments are removed when their creator exits", async () => {
    const { runScript } = await import("./helpers.ts");
    const result = await runScript("./fixtures/make-segments.ts");
    assert.equal(result.code, 0, result.stderr);
    const pid = Number(result.stdout.trim());
    assert.ok(pid > 0);
    assert.deepEqual(
      readdirSync("/dev/shm").filter((f) => f.startsWith(`mpts-${pid}-`)),
      [],
    );
  });
});
