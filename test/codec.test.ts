// What values keep across a process boundary, under each start method: Buffers stay Buffers, errors
// arrive as native errors of their class, instances of exported classes and exported functions
// travel by reference.
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { createHash } from "node:crypto";
import { after, describe, test } from "node:test";
import { types } from "node:util";
import { Manager, Pipe, type Pool, SerializationError, TimeoutError, getContext } from "multiprocessing-ts";
import {
  Point,
  describeBuffer,
  double,
  inspectError,
  makeBuffers,
  movePoint,
  pipeRefs,
  returnErrors,
  returnsHidden,
  taskWorker,
  throwWithFields,
} from "./fixtures/codec-tasks.ts";
import { methods, runScript } from "./helpers.ts";

for (const method of methods) {
  describe(`values crossing a boundary (${method})`, { timeout: 60_000 }, () => {
    const pool: Pool = new (getContext(method).Pool)(1);
    after(() => pool.terminate());

    test("a Buffer argument arrives as a Buffer", async () => {
      assert.deepEqual(await pool.apply(describeBuffer, [Buffer.from("hi")]), { isBuffer: true, text: "hi" });
      const [a, b] = await pool.map(describeBuffer, [Buffer.from("a"), Buffer.from("b")]);
      assert.deepEqual(
        [a, b],
        [
          { isBuffer: true, text: "a" },
          { isBuffer: true, text: "b" },
        ],
      );
    });

    test("a returned Buffer (from zlib, crypto, Buffer.from) comes back as a Buffer", async () => {
      const out = await pool.apply(makeBuffers, []);
      assert.ok(Buffer.isBuffer(out.plain));
      assert.equal(out.plain.toString("utf8"), "hi");
      assert.ok(Buffer.isBuffer(out.zipped));
      assert.equal(inflateSync(out.zipped).toString("utf8"), "hello");
      assert.ok(Buffer.isBuffer(out.digest));
      assert.equal(out.digest.toString("hex"), createHash("sha256").update("x").digest("hex"));
      assert.ok(Buffer.isBuffer(out.nested[0]!.b));
      assert.equal(out.nested[0]!.b.toString(), "deep");
    });

    /** A native RangeError with its message, field, native cause and both processes' frames. */
    function assertRemoteError(e: unknown, caller: string): void {
      assert.ok(types.isNativeError(e), "a native error");
      assert.ok(e instanceof RangeError);
      const error = e as RangeError & { code: string };
      assert.equal(error.message, "outer");
      assert.equal(error.code, "E_RICH");
      assert.equal((structuredClone(e) as Error).message, "outer");
      assert.ok(types.isNativeError(error.cause) && error.cause instanceof TypeError);
      assert.equal((error.cause as Error).message, "inner");
      const [remote, local] = String(error.stack).split("--- where the call was made ---");
      assert.match(String(remote), /throwWithFields/);
      assert.match(String(local), new RegExp(`${caller}[^\\n]*codec\\.test\\.ts`));
    }

    test("a thrown error arrives as a native error, with the caller's frames below the worker's", async () => {
      async function callsApply() {
        return await pool.apply(throwWithFields, []);
      }
      assertRemoteError(await callsApply().catch((e: unknown) => e), "callsApply");
      async function callsGet() {
        return await pool.applyAsync(throwWithFields, []).get();
      }
      assertRemoteError(await callsGet().catch((e: unknown) => e), "callsGet");
      async function callsMap() {
        return await pool.map(throwWithFields, [1]);
      }
      assertRemoteError(await callsMap().catch((e: unknown) => e), "callsMap");
      async function callsResult() {
        await using ex = new (getContext(method).ProcessPoolExecutor)({ maxWorkers: 1 });
        return await ex.submit(throwWithFields).result();
      }
      assertRemoteError(await callsResult().catch((e: unknown) => e), "callsResult");
    });

    test("errors passed and returned are native errors of their class", async () => {
      const seen = await pool.apply(inspectError, [new RangeError("sent")]);
      assert.deepEqual(seen, { native: true, range: true, message: "sent", cloned: "sent" });
      const { plain, library } = await pool.apply(returnErrors, []);
      assert.ok(types.isNativeError(plain) && plain instanceof TypeError);
      assert.equal((structuredClone(plain) as Error).message, "returned");
      assert.ok(types.isNativeError(plain.cause));
      assert.equal((plain.cause as Error).message, "because");
      assert.ok(types.isNativeError(library) && library instanceof TimeoutError);
      assert.equal(library.code, "ERR_MP_TIMEOUT");
      assert.equal(library.name, "TimeoutError");
      assert.equal(library.message, "late");
    });

    test("an instance of an exported class arrives as an instance of that class, both ways", async () => {
      const out = await pool.apply(movePoint, [new Point(3, -4)]);
      assert.equal(out.isPoint, true);
      assert.equal(out.norm, 7);
      assert.ok(out.moved instanceof Point);
      assert.equal(out.moved.norm1(), 8);
    });

    test("an instance of a class that cannot travel is a SerializationError naming the path and class", async () => {
      class Local {
        n = 1;
      }
      await assert.rejects(pool.apply(movePoint, [{ at: new Local() } as never]), (e: Error) => {
        assert.ok(e instanceof SerializationError);
        assert.match(e.message, /args\[0\]\.at is an instance of class Local/);
        return true;
      });
      await assert.rejects(pool.apply(returnsHidden, []), (e: Error) => {
        assert.ok(e instanceof SerializationError);
        assert.match(e.message, /result\.inner\[0\] is an instance of class Hidden/);
        return true;
      });
    });

    test("exported functions go through a Queue: Python's task queue and done queue", async () => {
      const ctx = getContext(method);
      const tasks = new ctx.Queue<[(...a: number[]) => number, number[]] | null>();
      const done = new ctx.Queue<[string, number]>();
      const worker = new ctx.Process({ target: taskWorker, args: [tasks, done] });
      worker.start();
      await tasks.put([double, [21]]);
      await tasks.put([double, [5]]);
      await tasks.put(null);
      assert.deepEqual(await done.get({ timeout: 30_000 }), ["double", 42]);
      assert.deepEqual(await done.get({ timeout: 30_000 }), ["double", 10]);
      await worker.join();
      assert.equal(worker.exitcode, 0);
    });

    test("classes and functions by reference over a Pipe", async () => {
      const ctx = getContext(method);
      const [here, there] = Pipe();
      const child = new ctx.Process({ target: pipeRefs, args: [there] });
      child.start();
      here.send({ p: new Point(5, 0), f: double });
      const reply = (await here.recv()) as { isPoint: boolean; applied: number; back: Point; fn: unknown };
      assert.equal(reply.isPoint, true);
      assert.equal(reply.applied, 10);
      assert.ok(reply.back instanceof Point);
      assert.equal(reply.back.norm1(), 15);
      assert.equal(reply.fn, double);
      await child.join();
      here.close();
    });
  });
}

describe("manager values", { timeout: 60_000 }, () => {
  test("an exported class's instance and an exported function are stored and come back as themselves", async () => {
    await using manager = await Manager.start();
    const d = await manager.dict<string, unknown>();
    await d.set("p", new Point(1, 2));
    await d.set("f", double);
    const p = await d.get("p");
    assert.ok(p instanceof Point);
    assert.equal(p.norm1(), 3);
    assert.equal(await d.get("f"), double);
  });
});

for (const method of methods) {
  test(`an instance of a class the entry script exports comes back to it as such (${method})`, {
    timeout: 60_000,
  }, async () => {
    const { code, stdout, stderr } = await runScript("fixtures/entry-class.ts", [method]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), { isBox: true, doubled: 8 });
  });
}
