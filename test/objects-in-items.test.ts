// Library objects inside Queue items and Pipe messages arrive connected to the same objects, under
// every start method. Ported from CPython's _TestPicklingConnections.test_access (connections sent
// over a connection to a child that uses them), extended to queues, locks and values.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Lock, Pipe, Process, Queue, Value, getStartMethod, setStartMethod } from "multiprocessing-ts";
import { type Bundle, addToShared, makeBundle, useBundle } from "./fixtures/object-tasks.ts";
import { methods } from "./helpers.ts";

const WAIT = { timeout: 30_000 };

for (const method of methods) {
  describe(`library objects inside queue items and pipe messages (${method})`, { timeout: 90_000 }, () => {
    // Pipe() has no context option: its ends use the default start method
    const previous = getStartMethod();
    before(() => setStartMethod(method, { force: true }));
    after(() => setStartMethod(previous, { force: true }));

    /** A bundle made here, with the lock held; `check` sees a child's use of it. */
    async function bundleHere() {
      const queue = new Queue<string>();
      const lock = new Lock();
      await lock.acquire();
      const value = new Value("i", 41, { lock: false });
      const [mine, theirs] = Pipe();
      const bundle: Bundle = { queue, lock, value, conn: theirs };
      const check = async (report: Queue<boolean>) => {
        assert.equal(await report.get(WAIT), false, "the child found the lock held: the same lock");
        assert.equal(value.value, 42, "the child's increment shows here: the same value");
        assert.equal(await queue.get(WAIT), "through the queue");
        assert.equal(await mine.recv(), "through the pipe");
        lock.release();
        assert.equal(await lock.acquire({ block: false }), true);
      };
      return { bundle, check };
    }

    test("a Queue, Lock, Value and Pipe end put on a queue reach a child connected", async () => {
      const items = new Queue<Bundle>();
      const report = new Queue<boolean>();
      const { bundle, check } = await bundleHere();
      const child = new Process({ target: useBundle, args: [items, report] }).start();
      await items.put(bundle);
      await check(report);
      await child.join();
      assert.equal(child.exitcode, 0);
    });

    test("a Queue, Lock, Value and Pipe end sent over a Connection reach a child connected", async () => {
      const [here, there] = Pipe();
      const report = new Queue<boolean>();
      const { bundle, check } = await bundleHere();
      const child = new Process({ target: useBundle, args: [there, report] }).start();
      here.send(bundle);
      await check(report);
      await child.join();
      assert.equal(child.exitcode, 0);
    });

    test("objects a child makes come back through a queue connected", async () => {
      const out = new Queue<Bundle>();
      const ack = new Queue<unknown>();
      const child = new Process({ target: makeBundle, args: [out, ack] }).start();
      const { queue, lock, value, conn } = await out.get(WAIT);
      assert.equal(await lock.acquire({ block: false }), false, "the child holds the lock");
      assert.equal(value.value, 7);
      assert.equal(await queue.get(WAIT), "from the child");
      assert.equal(await conn.recv(), "from the child");
      await ack.put("done");
      await child.join();
      assert.equal(child.exitcode, 0);
    });

    test("objects one child made and put on a queue are used by another child", async () => {
      // one child puts objects on a queue, another one uses them: neither is the one that made the queue
      const out = new Queue<Bundle>();
      const ack = new Queue<unknown>();
      const report = new Queue<boolean>();
      const maker = new Process({ target: makeBundle, args: [out, ack] }).start();
      const user = new Process({ target: useBundle, args: [out, report] }).start();
      assert.equal(await report.get(WAIT), false, "the user found the maker's lock held");
      await ack.put("done");
      await Promise.all([maker.join(), user.join()]);
      assert.deepEqual([maker.exitcode, user.exitcode], [0, 0]);
    });
  });
}

const threads = methods.includes("thread");
describe("thread start method: shared memory inside queue items", {
  timeout: 60_000,
  skip: !threads && "this run covers the spawn start method only",
}, () => {
  const previous = getStartMethod();
  before(() => setStartMethod("thread", { force: true }));
  after(() => setStartMethod(previous, { force: true }));

  test("objects made in a thread that has exited still arrive connected", async () => {
    const out = new Queue<Bundle>();
    const child = new Process({ target: makeBundle, args: [out, null] }).start();
    await child.join();
    assert.equal(child.exitcode, 0);
    const { queue, lock, value, conn } = await out.get(WAIT);
    assert.equal(await lock.acquire({ block: false }), false, "the lock is still held");
    assert.equal(value.value, 7);
    assert.equal(await queue.get(WAIT), "from the child");
    assert.equal(await conn.recv(), "from the child");
  });

  test("a SharedArrayBuffer view in an item is shared, not copied", async () => {
    const items = new Queue<{ view: Int32Array; add: number }>();
    const done = new Queue<string>();
    const view = new Int32Array(new SharedArrayBuffer(16), 4, 2);
    const child = new Process({ target: addToShared, args: [items, done] }).start();
    await items.put({ view, add: 5 });
    assert.equal(await done.get(WAIT), "added");
    assert.deepEqual([...new Int32Array(view.buffer)], [0, 5, 5, 0]);
    await child.join();
  });
});
