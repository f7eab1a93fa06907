// What values keep across a process boundary, under each start method: Buffers stay Buffers, errors
// arrive as native errors of their class, instances of exported classes and exported functions
// travel by reference.
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { createHash } from "node:crypto";
import { after, describe, test } from "node:test";
import { type Pool, getContext } from "multiprocessing-ts";
import { describeBuffer, makeBuffers } from "./fixtures/codec-tasks.ts";
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
  });
}
