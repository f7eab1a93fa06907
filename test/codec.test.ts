// What values keep across a process boundary, under each start method: Buffers stay Buffers, errors
// arrive as native errors of their class, instances of exported classes and exported functions
// travel by reference.
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { createHash } from "node:crypto";
import { after, describe, test } from "node:test";
import { types } from "node:util";
import { type Pool, TimeoutError, getContext } from "multiprocessing-ts";
import { describeBuffer, inspectError, makeBuffers, returnErrors, throwWithFields } from "./fixtures/codec-tasks.ts";
import { methods } from "./helpers.ts";

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
  });
}
