// Many short calls: the pool sends a worker its jobs a batch at a time, not one message per call.
// Each message to a worker thread is a postMessage that often wakes it, and each one to a process
// a write: sent per result, they cost the parent more than the calls themselves. A worker with jobs
// ahead gets more only once half of them are done, and the results that arrived together are
// answered together (this run sends about one message per 30 calls; one per call before).
import assert from "node:assert/strict";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { Socket } from "node:net";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { getContext } from "multiprocessing-ts";
import { gated, identity, spin, square } from "./fixtures/tasks.ts";
import { flagThen } from "./fixtures/sched-tasks.ts";
import { methods } from "./helpers.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
// without the addon a process pool has no claim cells: no job is sent ahead, one message per job
const noSendAhead =
  process.env.MULTIPROCESSING_TS_NO_NATIVE === "1" ? "without the addon no job is sent ahead (no claim cells)" : false;

/**
 * Counts what this process sends to its workers while `run` runs: postMessages to threads, writes
 * to pipes (each also told to `onSend`).
 */
async function messagesSent(run: () => Promise<unknown>, onSend?: () => void): Promise<number> {
  const post = Worker.prototype.postMessage;
  const write = Socket.prototype.write;
  let count = 0;
  Worker.prototype.postMessage = function (this: Worker, ...args: Parameters<Worker["postMessage"]>) {
    count++;
    onSend?.();
    return post.apply(this, args);
  };
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    if (this !== (process.stdout as unknown) && this !== (process.stderr as unknown)) {
      count++;
      onSend?.();
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
  try {
    await run();
    return count;
  } finally {
    Worker.prototype.postMessage = post;
    Socket.prototype.write = write;
  }
}

for (const method of methods) {
  const ctx = getContext(method);

  describe(`short calls travel to workers in batches (${method})`, { timeout: 120_000 }, () => {
    test("4000 apply() calls cost the parent at most one message per 4 calls", { skip: noSendAhead }, async () => {
      await using pool = new ctx.Pool(2);
      // short tasks measured first: the pool then sends jobs ahead to busy workers
      await pool.map(square, range(64), { chunksize: 1 });
      const n = 4000;
      let results: unknown[] = [];
      const sent = await messagesSent(async () => {
        results = await Promise.all(range(n).map((i) => pool.apply(identity, [i])));
      });
      assert.deepEqual(results, range(n));
      assert.ok(sent <= n / 4, `${sent} messages to the workers for ${n} calls`);
    });
  });
}

/** A pool of one worker that has measured its tasks as long (5 ms each, where a short one is under 0.2 ms). */
async function longTaskPool(ctx: ReturnType<typeof getContext>) {
  const pool = new ctx.Pool(1);
  try {
    await pool.map(spin, [5, 5, 5], { chunksize: 1 });
  } catch (error) {
    await pool.terminate();
    throw error;
  }
  return pool;
}

for (const method of methods) {
  const ctx = getContext(method);

  // Without a job ahead, a worker that finishes one waits for its result to reach the parent and
  // the next job to reach it: for a map chunk, two copies of the chunk's data, in which it sits idle.
  describe(`a worker running a long task already holds its next one (${method})`, { timeout: 120_000 }, () => {
    test("a call submitted while the only worker runs a long one is sent to it at once", {
      skip: noSendAhead,
    }, async () => {
      await using pool = await longTaskPool(ctx);
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      const long = pool.apply(gated, [started, release, -1]);
      assert.equal(await started.get({ timeout: 20_000 }), -1);
      let next: Promise<number> | undefined;
      const sent = await messagesSent(async () => {
        next = pool.apply(square, [3]);
        // what a tick sends leaves at its end
        await new Promise((resolve) => setImmediate(resolve));
      });
      await release.put(0);
      assert.equal(await long, -1);
      assert.equal(await next, 9);
      assert.equal(sent, 1, "the call behind the running one went to the worker while it ran");
    });
  });

  // A worker left with one job is sent its next one as soon as its result is handled, not once
  // every result that arrived with it is: handling those (for map chunks, copying each) would leave
  // it idle meanwhile.
  describe(`a worker about to run dry is refilled first (${method})`, { timeout: 120_000 }, () => {
    test("the job queued behind a worker's two leaves before the second one's result is handled", {
      skip: noSendAhead,
    }, async () => {
      // the worker then holds two jobs, the one it runs and the next
      await using pool = await longTaskPool(ctx);
      const started = new ctx.Queue<number>();
      const release = new ctx.Queue<number>();
      const flag = new ctx.Value("i", 0);
      const first = pool.apply(gated, [started, release, 1]);
      const second = pool.apply(flagThen, [flag, 2]);
      const third = pool.apply(square, [3]);
      assert.equal(await started.get({ timeout: 20_000 }), 1);
      const events: string[] = [];
      await release.put(0);
      await messagesSent(
        async () => {
          void second.then(() => events.push("second settled"));
          // this thread holds still until both results are on their way, so that they arrive together
          const deadline = Date.now() + 20_000;
          while (flag.value !== 1 && Date.now() < deadline) {}
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
          await Promise.all([first, second, third]);
        },
        () => events.push("sent"),
      );
      assert.deepEqual([await first, await second, await third], [1, 2, 9]);
      assert.deepEqual(
        events.slice(0, 2),
        ["sent", "second settled"],
        "the third job left before the second result was handled",
      );
    });
  });

  // A worker that has nothing to run starts as soon as its first job has reached it: the jobs sent
  // ahead with it follow in a message of their own, not in one that the worker must receive whole
  // (for a map chunk, copy every item of) before it can start.
  describe(`an idle worker's first job travels alone (${method})`, { timeout: 120_000 }, () => {
    test("a map of 2 chunks to a pool of 1 is 2 messages: the first chunk, then the one ahead", {
      skip: noSendAhead,
    }, async () => {
      // the pool then sends the worker one job ahead of the one it runs
      await using pool = await longTaskPool(ctx);
      const items = range(2000);
      let results: unknown[] = [];
      const sent = await messagesSent(async () => {
        results = await pool.map(identity, items, { chunksize: 1000 });
      });
      assert.deepEqual(results, items);
      assert.equal(sent, 2, `${sent} messages to the worker for its 2 jobs`);
    });
  });

  describe(`map over a chunk of any shape (${method})`, { timeout: 120_000 }, () => {
    test("a hole or an undefined is passed to fn as undefined, and an async fn's results keep their order", async () => {
      await using pool = new ctx.Pool(2);
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      const sparse = [1, , 3, undefined, 5];
      assert.deepEqual(await pool.map((x: number | undefined) => (x === undefined ? "u" : x * 2), sparse), [
        2,
        "u",
        6,
        "u",
        10,
      ]);
      const items = range(1000);
      assert.deepEqual(
        await pool.map(async (x: number) => x + 1, items, { chunksize: 250 }),
        items.map((x) => x + 1),
      );
      assert.deepEqual(
        await pool.starmap(
          (a: number, b: number) => a * b,
          items.map((x) => [x, 2] as [number, number]),
        ),
        items.map((x) => x * 2),
      );
    });
  });
}

/** Counts this process's v8.serialize and v8.deserialize calls while `run` runs. */
async function v8Calls(run: () => Promise<unknown>): Promise<number> {
  const v8 = createRequire(import.meta.url)("node:v8") as typeof import("node:v8");
  const { serialize, deserialize } = v8;
  let count = 0;
  v8.serialize = (value) => {
    count++;
    return serialize(value);
  };
  v8.deserialize = (buffer) => {
    count++;
    return deserialize(buffer);
  };
  syncBuiltinESMExports();
  try {
    await run();
    return count;
  } finally {
    v8.serialize = serialize;
    v8.deserialize = deserialize;
    syncBuiltinESMExports();
  }
}

describe("a short call's messages to and from a process (spawn)", { timeout: 120_000 }, () => {
  test("small plain data crosses the pipe without v8.serialize (several µs a message)", async () => {
    await using pool = new (getContext("spawn").Pool)(2);
    await pool.apply(identity, [0]);
    const n = 500;
    let results: unknown[] = [];
    const calls = await v8Calls(async () => {
      results = await Promise.all(range(n).map((i) => pool.apply(identity, [[i, `item ${i}`, i % 2 === 0, null]])));
    });
    assert.deepEqual(
      results,
      range(n).map((i) => [i, `item ${i}`, i % 2 === 0, null]),
    );
    assert.ok(calls < 10, `${calls} v8.serialize/deserialize calls in the parent for ${n} calls`);
  });
});

for (const method of methods) {
  const ctx = getContext(method);

  describe(`values that JSON would change cross unchanged (${method})`, { timeout: 120_000 }, () => {
    test("-0, NaN, infinities, holes, undefined, named properties of arrays, shared references, lone surrogates, long strings", async () => {
      await using pool = new ctx.Pool(1);
      const match = /b(c)/.exec("abcd")!;
      const named = Object.assign([1, 2], { label: "x" });
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      const holey = [1, , 3];
      const values: unknown[] = [
        -0,
        [-0],
        Number.NaN,
        [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
        holey,
        [undefined],
        match,
        named,
        "\ud800 lone",
        ["é😀", "\u2028", '"\\'],
        "x".repeat(5000),
        [2 ** 53, 1e21, 5e-324, -1.5e-7],
        [[[true, false, null]]],
        [1n],
        range(3000),
      ];
      for (const value of values) {
        const back = (await pool.apply(identity, [value])) as unknown;
        assert.deepStrictEqual(back, value);
        if (Array.isArray(value)) {
          assert.ok(Array.isArray(back));
          assert.deepStrictEqual(Object.keys(back as object), Object.keys(value));
        }
      }
      // an array met twice stays one array, as structured clone keeps it
      const shared = [1, 2];
      const [a, b] = (await pool.apply(identity, [[shared, shared]])) as number[][];
      assert.deepEqual(a, [1, 2]);
      assert.equal(a, b);
      const one = { n: 1 };
      const [c, d] = (await pool.apply(identity, [[one, one]])) as object[];
      assert.deepEqual(c, { n: 1 });
      assert.equal(c, d);
      const backMatch = (await pool.apply(identity, [match])) as RegExpExecArray;
      assert.equal(backMatch.index, 1);
      assert.equal(backMatch.input, "abcd");
      assert.ok(Object.is(await pool.apply(identity, [-0]), -0));
    });
  });
}
