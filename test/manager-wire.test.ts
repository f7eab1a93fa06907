// What crosses a manager's connection comes back as it was sent: small plain messages take a JSON
// path (see src/internal/framing.ts), everything else the structured-clone one, and a value JSON
// would change (-0, NaN, undefined, a hole, a property set to undefined) must not take the JSON path.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type DictProxy, Manager, Process } from "multiprocessing-ts";
import { setWithoutAwaiting } from "./fixtures/wire-tasks.js";
import { methods } from "./helpers.js";

const sparse: unknown[] = [1, 2, 3];
delete sparse[1]; // a hole
const named = Object.assign([1, 2], { extra: "kept" });
const cases: [string, unknown][] = [
  ["a string", "k"],
  ["a number", 12.5],
  ["-0", -0],
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["undefined", undefined],
  ["null", null],
  ["a bigint", 2n ** 70n],
  ["an array with undefined", [1, undefined, 3]],
  ["an array with a hole", sparse],
  ["an array with a named property", named],
  ["an object with a property set to undefined", { a: undefined, b: 1 }],
  ["an object with an own __proto__ key", JSON.parse('{"__proto__": 1, "x": [true, false]}')],
  ["a lone surrogate", "a\ud800b"],
  ["nested plain data", { list: [1, "two", { three: [3, null] }], flag: true }],
  ["a large plain array", Array.from({ length: 500 }, (_, i) => i)],
  ["a Date", new Date(1e12)],
  ["a Map", new Map([["a", 1]])],
  ["bytes", new Uint8Array([1, 2, 255])],
];

for (const context of methods) {
  describe(`manager wire (${context})`, { timeout: 60_000 }, () => {
    let manager: Manager;
    let d: DictProxy<string, unknown>;
    before(async () => {
      manager = await Manager.start({ context });
      d = manager.dict();
    });
    after(() => manager.shutdown());

    test("every value comes back exactly as it was set", async () => {
      for (const [what, value] of cases) {
        assert.equal(await d.set(what, value), undefined, `set(${what}) resolves undefined`);
        const back = await d.get(what);
        assert.deepStrictEqual(back, value, what);
        if (Array.isArray(value)) {
          assert.deepStrictEqual(Object.keys(back as object), Object.keys(value), `${what}: its own keys`);
        }
      }
      assert.ok(Object.is(await d.get("-0"), -0), "-0 stays -0");
      assert.ok(!(1 in ((await d.get("an array with a hole")) as unknown[])), "the hole stays a hole");
      assert.ok("a" in ((await d.get("an object with a property set to undefined")) as object), "the key stays");
      assert.deepStrictEqual(await d.get("missing", "fallback"), "fallback");
    });

    test("sets a child did not await reach the manager before it exits", async () => {
      const n = 300;
      const child = new Process({ target: setWithoutAwaiting, args: [d, n], context }).start();
      await child.join();
      assert.equal(child.exitcode, 0);
      for (let i = 0; i < n; i += 37) assert.equal(await d.get(`k${i}`), i);
      assert.equal(await d.get(`k${n - 1}`), n - 1);
    });
  });
}
