// Queue, SimpleQueue and JoinableQueue: Python's semantics, in one process and across processes.
// Ported from CPython's _TestQueue where it applies (get/put timeouts, Full/Empty, task_done/join).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ClosedError,
  Empty,
  Full,
  JoinableQueue,
  Process,
  Queue,
  SerializationError,
  SimpleQueue,
  getContext,
} from "multiprocessing-ts";
import { readdirSync } from "node:fs";
import {
  consumeAll,
  dieHoldingQueueLock,
  fillBounded,
  putAll,
  putLargeThenClose,
  putRange,
  putStrings,
  putWithoutWaiting,
  relay,
  reportSizes,
} from "./fixtures/tasks.ts";
import { methods, runScript } from "./helpers.ts";

/** The spawn start method without the native addon: queues are then held by a broker, not shared memory. */
const fallback = process.env.MULTIPROCESSING_TS_NO_NATIVE === "1";
/** A queue's ring holds 256 KiB: these sizes are well past it. */
const RING = 256 * 1024;

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
    // an item too large for the ring counts too
    await q.put(new Uint8Array(2 * RING) as never);
    let bigJoined = false;
    const joiningBig = q.join().then(() => (bigJoined = true));
    assert.equal(((await q.get()) as unknown as Uint8Array).length, 2 * RING);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(bigJoined, false);
    q.taskDone();
    await joiningBig;
  });

  test("items come out with the value and shape structured clone gives", async () => {
    const q = new Queue<unknown>();
    const shared = { s: 1 };
    const cyclic: Record<string, unknown> = { n: 1 };
    cyclic.self = cyclic;
    const holes = [1, 2, 3];
    delete holes[1];
    const named = Object.assign([1, 2], { extra: "x" });
    const values: unknown[] = [
      0,
      -0,
      1.5,
      2 ** 31,
      -(2 ** 31),
      Number.NaN,
      Number.POSITIVE_INFINITY,
      "",
      "latin1 é ÿ",
      "unicode ☃ 𝄞",
      "lone \ud800 surrogate",
      "x".repeat(10_000),
      true,
      false,
      null,
      undefined,
      [1, "a", [null, [undefined]], { k: [] }],
      { a: 1, b: { c: "d" }, e: undefined, 2: "two" },
      JSON.parse('{"__proto__": {"polluted": true}}'),
      Object.assign(Object.create(null), { bare: 1 }),
      { same: shared, again: shared },
      cyclic,
      holes,
      named,
      new Date(0),
      new Map([[1, { m: 2 }]]),
      new Set(["s"]),
      12345678901234567890n,
      new Float64Array([1.5, -2]),
      Array.from({ length: 5000 }, (_, i) => i),
    ];
    for (const value of values) await q.put(value);
    for (const value of values) assert.deepStrictEqual(await q.get(), structuredClone(value));
    await q.put({ same: shared, again: shared });
    const first = (await q.get()) as { same: object; again: object };
    assert.equal(first.same, first.again, "a shared reference stays shared");
    await q.put(cyclic);
    const back = (await q.get()) as Record<string, unknown>;
    assert.equal(back.self, back);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(q.qsize(), 0);
  });

  test("a typed array taken from a queue keeps its bytes when more items are taken", async () => {
    for (const context of methods) {
      const q = new Queue<unknown>(0, { context });
      await q.put(new Uint8Array([1, 2, 255]));
      await q.put({ doubles: new Float64Array([0.5, -2]), text: "overwrite the bytes before" });
      await q.put(new Uint8Array(64).fill(7));
      const first = await q.get();
      const second = (await q.get()) as { doubles: Float64Array };
      await q.get();
      assert.deepEqual(first, new Uint8Array([1, 2, 255]), context);
      assert.deepEqual(second.doubles, new Float64Array([0.5, -2]), context);
    }
  });

  test("an item larger than the ring, and far more items than it holds, keep their order", async () => {
    const q = new Queue<unknown>();
    const big = new Uint8Array(4 * RING).map((_, i) => i % 251);
    const count = 3 * (RING / 16);
    await q.put("first");
    await q.put(big);
    for (let i = 0; i < count; i++) await q.put(i);
    await q.put("last");
    assert.equal(q.qsize(), count + 3);
    assert.equal(await q.get(), "first");
    assert.deepEqual(await q.get(), big);
    for (let i = 0; i < count; i++) assert.equal(await q.get(), i);
    assert.equal(await q.get(), "last");
    assert.equal(q.qsize(), 0);
  });

  test("items of every size around the ring's end and its inline limit come out whole, in order", async () => {
    const q = new Queue<string>();
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const item = (i: number, length: number) => `${i};`.padEnd(length, String.fromCharCode(97 + (i % 26)));
    let put = 0;
    let got = 0;
    const lengths: number[] = [];
    while (got < 3000) {
      // a few puts, a few gets: the ring fills, drains and wraps at every offset
      for (let k = random(8); k > 0 && put < 3000; k--) {
        const length = random(4) === 0 ? 60_000 + random(10_000) : 1 + random(3000);
        lengths.push(length);
        await q.put(item(put++, length));
      }
      for (let k = random(8); k > 0 && got < put; k--) {
        assert.equal(await q.get(), item(got, lengths[got]!));
        got++;
      }
    }
    assert.equal(q.qsize(), 0);
  });

  test("a queue made for the thread start method cannot be sent to a process, with advice", () => {
    const q = new (getContext("thread").Queue)();
    assert.throws(
      () => new (getContext("spawn").Process)({ target: putAll, args: [q, [1]] }).start(),
      /"thread" start method.*getContext\("spawn"\)/s,
    );
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

    test("qsize() is exact in a child", {
      skip: fallback && "a broker-held queue's size is approximate in other processes",
    }, async () => {
      const q = new ctx.Queue<number>();
      const out = new ctx.Queue<number>();
      for (const i of [1, 2, 3]) await q.put(i);
      const p = new ctx.Process({ target: reportSizes, args: [q, out] }).start();
      assert.equal(await out.get({ timeout: 20_000 }), 3);
      assert.equal(await out.get({ timeout: 20_000 }), 2);
      assert.equal(q.qsize(), 2);
      await p.join();
      assert.equal(await q.get(), 2);
    });

    test("many small items from 2 producers arrive complete and in each producer's order", async () => {
      const q = new ctx.Queue<number>();
      const n = 20_000;
      const a = new ctx.Process({ target: putRange, args: [q, 0, n, 1000] }).start();
      const b = new ctx.Process({ target: putRange, args: [q, 1_000_000, n, 1000] }).start();
      const next = [0, 1_000_000];
      for (let i = 0; i < 2 * n; i++) {
        const x = await q.get({ timeout: 20_000 });
        const from = x < 1_000_000 ? 0 : 1;
        assert.equal(x, next[from], `producer ${from}: expected ${next[from]}, got ${x}`);
        next[from]!++;
      }
      await Promise.all([a.join(), b.join()]);
      assert.deepEqual(next, [n, 1_000_000 + n]);
      assert.equal(q.qsize(), 0);
    });

    test("an unbounded queue takes far more than its ring holds with nobody reading, then drains in order", async () => {
      const q = new ctx.Queue<string>();
      const count = 2000;
      const length = 1000;
      const p = new ctx.Process({ target: putStrings, args: [q, count, length] }).start();
      await p.join();
      assert.equal(p.exitcode, 0);
      assert.ok(count * length > 5 * RING);
      assert.equal(q.qsize(), count);
      for (let i = 0; i < count; i++) assert.equal(await q.get(), `${i}:`.padEnd(length, "x"));
      assert.equal(q.qsize(), 0);
      await assert.rejects(q.getNowait(), Empty);
    });

    test("items larger than the ring pass between processes, in order, even when closed at once", async () => {
      const q = new ctx.Queue<unknown>();
      const p = new ctx.Process({ target: putLargeThenClose, args: [q, 2 * RING] }).start();
      await p.join();
      assert.equal(await q.get(), "before");
      const data = (await q.get()) as Uint8Array;
      assert.equal(data.length, 2 * RING);
      for (let i = 0; i < data.length; i += 1024) assert.equal(data[i], (i >> 10) % 251);
      assert.equal(await q.get(), "after");
      await assert.rejects(q.get(), ClosedError);
      // a child that returns right after its puts, without awaiting them
      const big = new Uint8Array(3 * RING).fill(7);
      const q1 = new ctx.Queue<unknown>();
      const w = new ctx.Process({ target: putWithoutWaiting, args: [q1, [1, big, 2]] }).start();
      await w.join();
      assert.equal(q1.qsize(), 3);
      assert.deepEqual([await q1.get(), await q1.get(), await q1.get()], [1, big, 2]);
      // read by a process that did not create the queue
      const q2 = new ctx.Queue<unknown>();
      const out = new ctx.Queue<unknown>();
      await q2.put(big);
      const r = new ctx.Process({ target: relay, args: [q2, out] }).start();
      assert.deepEqual(await out.get({ timeout: 20_000 }), big);
      await r.join();
    });

    test("a bounded queue: Full after the timeout or at once, and a blocked put goes on after a get", async () => {
      const q = new ctx.Queue<number>(2);
      const out = new ctx.Queue<unknown>();
      const p = new ctx.Process({ target: fillBounded, args: [q, out] }).start();
      const [failure, waited] = (await out.get({ timeout: 20_000 })) as [string, number];
      assert.equal(failure, "Full");
      assert.ok(waited >= 190 && waited < 5000, `the put waited ${waited} ms`);
      assert.equal(await out.get({ timeout: 20_000 }), "Full");
      assert.equal(await out.get({ timeout: 20_000 }), true, "full() in the child");
      assert.equal(q.full(), true);
      assert.equal(q.qsize(), 2);
      assert.equal(await q.get(), 1);
      assert.equal(await out.get({ timeout: 20_000 }), "put 3");
      assert.equal(await q.get(), 2);
      assert.equal(await q.get(), 3);
      await p.join();
      await assert.rejects(q.get({ timeout: 100 }), Empty);
    });

    test("JoinableQueue: join() waits for a child's taskDone() calls", async () => {
      const q = new ctx.JoinableQueue<number>();
      const p = new ctx.Process({ target: consumeAll, args: [q] }).start();
      for (let i = 0; i < 100; i++) await q.put(i);
      await q.join({ signal: AbortSignal.timeout(20_000) });
      assert.equal(q.qsize(), 0);
      q.close();
      await p.join();
      assert.equal(p.exitcode, 0);
    });
  });
}

describe("Queue shared memory", { timeout: 60_000 }, () => {
  test("a process killed while holding a queue's lock does not block it", {
    skip: fallback && "no shared memory without the addon",
  }, async () => {
    const q = new Queue<number>(0, { context: "spawn" });
    await q.put(1);
    const p = new Process({ target: dieHoldingQueueLock, args: [q], context: "spawn" }).start();
    await p.join();
    assert.equal(p.exitcode, -9);
    // the child died holding the ring's lock: the put must find its holder gone and go on
    await q.put(2);
    assert.deepEqual([await q.get(), await q.get()], [1, 2]);
  });

  test("segments are removed when their creator exits, or by the next maker when it was killed", {
    skip: fallback && "no shared memory without the addon",
  }, async () => {
    const segmentsOf = (pid: number) => readdirSync("/dev/shm").filter((f) => f.startsWith(`mpts-${pid}-`));
    let killed = 0;
    let heldSegments = 0;
    const held = await runScript("./fixtures/hold-segment.ts", [], (line, kill) => {
      killed = Number(line);
      heldSegments = segmentsOf(killed).length;
      kill("SIGKILL");
    });
    assert.equal(held.signal, "SIGKILL");
    // counted while the holder ran: once it is killed, any process of a test file running beside
    // this one may be the next to make a segment, and remove it first
    assert.equal(heldSegments, 1, "the holder made one segment");
    const result = await runScript("./fixtures/queue-segments.ts");
    assert.equal(result.code, 0, result.stderr);
    const pid = Number(result.stdout.trim());
    assert.ok(pid > 0);
    assert.deepEqual(segmentsOf(pid), []);
    assert.deepEqual(segmentsOf(killed), [], "the next process to make segments removed the killed one's");
  });
});
