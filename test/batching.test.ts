// Many short calls: the pool sends a worker its jobs a batch at a time, not one message per call.
// Each message to a worker thread is a postMessage that often wakes it, and each one to a process
// a write: sent per result, they cost the parent more than the calls themselves. A worker with jobs
// ahead gets more only once half of them are done, and the results that arrived together are
// answered together (this run sends about one message per 30 calls; one per call before).
import assert from "node:assert/strict";
import { Socket } from "node:net";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { getContext } from "multiprocessing-ts";
import { identity, square } from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
// without the addon a process pool has no claim cells: no job is sent ahead, one message per job
const noSendAhead =
  process.env.MULTIPROCESSING_TS_NO_NATIVE === "1" ? "without the addon no job is sent ahead (no claim cells)" : false;

/** Counts what this process sends to its workers while `run` runs: postMessages to threads, writes to pipes. */
async function messagesSent(run: () => Promise<unknown>): Promise<number> {
  const post = Worker.prototype.postMessage;
  const write = Socket.prototype.write;
  let count = 0;
  Worker.prototype.postMessage = function (this: Worker, ...args: Parameters<Worker["postMessage"]>) {
    count++;
    return post.apply(this, args);
  };
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    if (this !== (process.stdout as unknown) && this !== (process.stderr as unknown)) count++;
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

for (const method of methods) {
  const ctx = getContext(method);

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
