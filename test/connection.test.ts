// Pipe and Connection: Python's semantics in one process and across processes. Ported from CPython's
// _TestConnection where it applies (duplex/one-way, poll, send_bytes, EOFError after close).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EOFError, Pipe, SerializationError, getContext } from "multiprocessing-ts";
import { closeThenSend, echo, echoBytes, holdConnection, holdThenEnd, parkOnQueue } from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

/** How long a reader may take to see that the last holder of the other end is gone. */
const EOF_WITHIN_MS = 3000;

/** Settles as `promise` does; rejects instead if it is still pending after `ms` (a reader that would hang). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe("Pipe in one process", { timeout: 30_000 }, () => {
  test("duplex: both ends send and receive, in order, without merging", async () => {
    const [a, b] = Pipe();
    a.send(1);
    a.send([2, 3]);
    b.send("x");
    assert.equal(await b.recv(), 1);
    assert.deepEqual(await b.recv(), [2, 3]);
    assert.equal(await a.recv(), "x");
    assert.equal(await a.poll(), false);
    assert.equal(await a.poll(50), false);
    b.send(null);
    assert.equal(await a.poll(), true);
    assert.equal(await a.recv(), null);
  });

  test("one-way pipes refuse the wrong direction", () => {
    const [reader, writer] = Pipe(false);
    assert.throws(() => reader.send(1), /only receive/);
    assert.rejects(writer.recv(), /only send/);
    assert.equal(reader.readable && !reader.writable, true);
    assert.throws(() => Pipe("yes" as never), TypeError);
  });

  test("close: the peer reads what is left, then EOFError; the closed end refuses use", async () => {
    const [a, b] = Pipe();
    a.send("last");
    a.close();
    assert.equal(await b.poll(), true);
    assert.equal(await b.recv(), "last");
    await assert.rejects(b.recv(), EOFError);
    assert.throws(() => a.send(1), /closed/);
  });

  test("a copy of an end works after the original closes; EOF comes when the last copy closes", async () => {
    const [a, b] = Pipe();
    const [carrierIn, carrierOut] = Pipe();
    carrierOut.send(b);
    b.close();
    const copy = await carrierIn.recv();
    copy.send("from the copy");
    assert.equal(await a.recv(), "from the copy");
    a.send("to the copy");
    assert.equal(await copy.recv(), "to the copy");
    assert.equal(await a.poll(), false, "the direction the copy writes is still open");
    copy.close();
    await assert.rejects(a.recv(), EOFError);
  });

  test("a value that cannot travel throws at send; the pipe goes on", async () => {
    const [a, b] = Pipe();
    assert.throws(() => a.send({ f: () => 1 }), SerializationError);
    a.send(2);
    assert.equal(await b.recv(), 2);
  });
});

for (const method of methods) {
  describe(`Pipe across processes (${method})`, { timeout: 60_000 }, () => {
    const ctx = getContext(method);

    // the parent never closes its copy of the child's end: the copy it sent holds that end, not its own
    test("an echo child answers in order, then closes: EOFError though the parent kept its copy", async () => {
      const [parent, child] = Pipe();
      const p = new ctx.Process({ target: echo, args: [child] }).start();
      for (const word of ["ping", { n: 1 }, [1, 2]]) {
        parent.send(word);
        assert.deepEqual(await parent.recv(), word);
      }
      assert.equal(await parent.poll(100), false, "nothing more to read while the child holds its end");
      parent.send("bye");
      await p.join();
      await assert.rejects(parent.recv(), EOFError);
      child.close(); // closing the copy that was sent changes nothing
    });

    // test_spawn_close: the parent closes its copy of the child's end as soon as the child starts
    test("the parent closes the child's end after start: the child's copy works, its close is EOF", async () => {
      const [parent, child] = Pipe();
      const p = new ctx.Process({ target: echo, args: [child] }).start();
      child.close();
      parent.send("hello");
      assert.equal(await parent.recv(), "hello");
      parent.send("bye");
      await assert.rejects(parent.recv(), EOFError);
      await p.join();
      assert.equal(p.exitcode, 0);
    });

    test("a child that exits without closing its end: the reader gets EOFError", async () => {
      const [parent, child] = Pipe();
      const p = new ctx.Process({ target: echoBytes, args: [child] }).start();
      child.close();
      parent.sendBytes(new Uint8Array([1, 2, 3]));
      assert.deepEqual([...(await parent.recvBytes())], [1, 2, 3]);
      await assert.rejects(parent.recv(), EOFError);
      await p.join();
      assert.equal(p.exitcode, 0);
    });

    // the last holder of the writing end dies without a normal exit: its copy is given up all the same
    const deaths = [
      { how: "kill()", target: "wait", stop: (p: InstanceType<typeof ctx.Process>) => p.kill(), exitcode: -9 },
      {
        how: "terminate()",
        target: "wait",
        stop: (p: InstanceType<typeof ctx.Process>) => p.terminate(),
        exitcode: -15,
      },
      { how: "process.exit() in the target", target: "exit", stop: () => {}, exitcode: 3 },
      { how: "an uncaught error", target: "throw", stop: () => {}, exitcode: 1 },
    ] as const;
    for (const { how, target, stop, exitcode } of deaths) {
      test(`the only holder of the other end ends by ${how}: recv() rejects with EOFError promptly`, async () => {
        const [parent, child] = Pipe();
        const p = new ctx.Process({ target: holdThenEnd, args: [child, target] }).start();
        child.close();
        assert.equal(await parent.recv(), "ready");
        parent.send("go");
        stop(p);
        await assert.rejects(within(parent.recv(), EOF_WITHIN_MS), EOFError);
        await p.join();
        assert.equal(p.exitcode, exitcode);
      });
    }

    test("a copy in a pool's initargs counts once per worker: one worker's close leaves the others' open", async () => {
      const [parent, child] = Pipe();
      const gate = new ctx.Barrier(2);
      const pool = new ctx.Pool({ processes: 2, initializer: holdConnection, initargs: [child, gate] });
      try {
        child.close();
        const names = await pool.map(closeThenSend, [0, 1], { chunksize: 1 });
        assert.notEqual(names[0], names[1], "the two tasks ran on two workers");
        assert.equal(await within(parent.recv(), EOF_WITHIN_MS), "still open");
      } finally {
        pool.terminate();
      }
      await assert.rejects(within(parent.recv(), EOF_WITHIN_MS), EOFError, "the workers are gone, and their copies");
      await pool.join();
    });

    test("a copy sent where no one receives it does not hold the reader once its sender is gone", async () => {
      const [parent, child] = Pipe();
      const nobodyReads = new ctx.Queue();
      const p = new ctx.Process({ target: parkOnQueue, args: [child, nobodyReads] }).start();
      child.close();
      await p.join();
      assert.equal(p.exitcode, 0);
      await assert.rejects(within(parent.recv(), EOF_WITHIN_MS), EOFError);
    });

    test("sendBytes/recvBytes carry 16 MiB", async () => {
      const [parent, child] = Pipe();
      const p = new ctx.Process({ target: echoBytes, args: [child] }).start();
      const data = new Uint8Array(16 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
      parent.sendBytes(data);
      const back = await parent.recvBytes();
      assert.equal(back.length, data.length);
      assert.ok(Buffer.compare(back, Buffer.from(data)) === 0);
      await p.join();
    });
  });
}
