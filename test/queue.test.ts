// Queue, SimpleQueue and JoinableQueue: Python's semantics, in one process and across processes.
// Ported from CPython's _TestQueue where it applies (get/put timeouts, Full/Empty, task_done/join).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ClosedError,
  Empty,
  Full,
  JoinableQueue,
  Queue,
  SerializationError,
  SimpleQueue,
  getContext,
} from "multiprocessing-ts";
import { putAll } from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

describe("Queue in one process", { timeout: 30_000 }, () => {
  test("FIFO, qsize, empty, full, nowait variants", async () => {
    const q = new Queue<number>(2);
    assert.equal(q.empty(), true);
    await q.put(1);
    await q.putNowait(2);
    assert.equal(q.qsize(), 2);
    assert.equal(q.full(), true);
    await assert.rejects(q.putNowait(3), Full);
    await assert.rejects(q.put(3, { block: false, timeout: 10_000 }), Full, "block: false ignores the timeout");
    assert.equal(await q.get(), 1);
    assert.equal(await q.getNowait(), 2);
    await assert.rejects(q.getNowait(), Empty);
  });

  test("get and put time out after about their timeout", async () => {
    const q = new Queue<number>(1);
    let t0 = performance.now();
    await assert.rejects(q.get({ timeout: 200 }), Empty);
    let waited = performance.now() - t0;
    assert.ok(waited >= 190 && waited < 2000, `get waited ${waited} ms`);
    await q.put(1);
    t0 = performance.now();
    await assert.rejects(q.put(2, { timeout: 200 }), Full);
    waited = performance.now() - t0;
    assert.ok(waited >= 190 && waited < 2000, `put waited ${waited} ms`);
  });

  test("a waiting get is woken by a put; an abort leaves the queue intact", async () => {
    const q = new Queue<string>();
    const pending = q.get();
    await q.put("x");
    assert.equal(await pending, "x");
    const controller = new AbortController();
    const aborted = q.get({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(aborted, /stop/);
    await q.put("y");
    assert.equal(await q.get(), "y");
  });

  test("items are copied at put; values that cannot travel are refused and the queue goes on", async () => {
    const q = new Queue<{ n: number[] }>();
    const item = { n: [1] };
    await q.put(item);
    item.n.push(2);
    assert.deepEqual(await q.get(), { n: [1] });
    await assert.rejects(q.put({ n: [1], f: () => 1 } as never), SerializationError);
    assert.equal(q.qsize(), 0);
    await q.put({ n: [3] });
    assert.deepEqual(await q.get(), { n: [3] });
  });

  test("close: put rejects, get drains then rejects, for await ends", async () => {
    const q = new SimpleQueue<number>();
    await q.put(1);
    await q.put(2);
    q.close();
    await assert.rejects(q.put(3), ClosedError);
    const seen: number[] = [];
    for await (const x of q) seen.push(x);
    assert.deepEqual(seen, [1, 2]);
    await assert.rejects(q.get(), ClosedError);
  });

  test("JoinableQueue: join waits for taskDone; too many taskDone throws", async () => {
    const q = new JoinableQueue<number>();
    await q.put(1);
    await q.put(2);
    let joined = false;
    const joining = q.join().then(() => (joined = true));
    await q.get();
    q.taskDone();
    await q.get();
    assert.equal(joined, false);
    q.taskDone();
    await joining;
    assert.equal(joined, true);
    assert.throws(() => q.taskDone(), /more times/);
  });

  test("bad arguments", async () => {
    assert.throws(() => new Queue("x" as never), TypeError);
    await assert.rejects(new Queue().get({ timeout: -1 }), RangeError);
    await assert.rejects(new Queue().get({ timeout: Number.NaN }), RangeError);
    await assert.rejects(new Queue().get({ block: "no" as never }), TypeError);
  });
});

for (const method of methods) {
  describe(`Queue across processes (${method})`, { timeout: 60_000 }, () => {
    const ctx = getContext(method);

    test("items from one producer arrive in order; two producers lose nothing", async () => {
      const q = new ctx.Queue<number>();
      const items = Array.from({ length: 500 }, (_, i) => i);
      const a = new ctx.Process({ target: putAll, args: [q, items] }).start();
      const b = new ctx.Process({ target: putAll, args: [q, items.map((i) => i + 1000)] }).start();
      const fromA: number[] = [];
      const fromB: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const x = await q.get({ timeout: 20_000 });
        (x < 1000 ? fromA : fromB).push(x);
      }
      await a.join();
      await b.join();
      assert.deepEqual(fromA, items);
      assert.deepEqual(
        fromB,
        items.map((i) => i + 1000),
      );
      assert.equal(q.qsize(), 0);
    });

    test("a child that puts and exits never blocks the parent's join", async () => {
      const q = new ctx.Queue<number>();
      const p = new ctx.Process({ target: putAll, args: [q, [1, 2, 3]] }).start();
      await p.join();
      assert.equal(p.exitcode, 0);
      assert.equal(q.qsize(), 3);
    });
  });
}
