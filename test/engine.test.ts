// The start-method registry and the pool engine seam: a start method that offers only pools plugs
// in by adding an engine, and Pool and ProcessPoolExecutor run on it unchanged; everything that
// needs a capability it lacks (Process, queues, locks, shared values, managers) refuses it clearly.
// The registry is internal, so this suite uses the library's sources rather than the package.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  Lock,
  Manager,
  Pool,
  Process,
  ProcessPoolExecutor,
  Queue,
  Value,
  getAllStartMethods,
  getContext,
} from "../src/index.ts";
import { registerStartMethod } from "../src/backends/registry.ts";
import type { StartMethod } from "../src/internal/runtime.ts";
import { engines, inlineMethod } from "./fixtures/inline-engine.ts";

const inline = "inline" as StartMethod;
const square = (x: number) => x * x;
const add = (a: number, b: number) => a + b;

describe("a start method that offers pools only", { timeout: 60_000 }, () => {
  const unregister = registerStartMethod(inlineMethod);
  after(unregister);

  test("Pool runs its calls on the method's engine", async () => {
    await using pool = new Pool({ processes: 3, context: inline });
    assert.equal(pool.startMethod, "inline");
    const engine = engines.at(-1)!;
    assert.equal(engine.options.size, 3);
    assert.deepEqual(await pool.map(square, [1, 2, 3, 4], { chunksize: 2 }), [1, 4, 9, 16]);
    assert.deepEqual(
      await pool.starmap(add, [
        [1, 2],
        [3, 4],
      ]),
      [3, 7],
    );
    assert.equal(await pool.apply(square, [7]), 49);
    assert.equal(await pool.applyAsync(square, [8]).get(), 64);
    const streamed: number[] = [];
    for await (const y of pool.imap(square, [5, 6])) streamed.push(y);
    assert.deepEqual(streamed, [25, 36]);
    await assert.rejects(
      pool.apply(() => {
        throw new RangeError("nope");
      }),
      { name: "RangeError", message: "nope" },
    );
    assert.equal(engine.ran, 2 + 2 + 1 + 1 + 2 + 1);
  });

  test("ProcessPoolExecutor runs its futures on the method's engine", async () => {
    await using ex = new ProcessPoolExecutor({ maxWorkers: 2, context: inline });
    const engine = engines.at(-1)!;
    const f = ex.submit(add, 20, 22);
    assert.equal(await f.result(), 42);
    assert.deepEqual(await ex.map(square, [1, 2, 3]), [1, 4, 9]);
    assert.equal(engine.ran, 4);
  });

  test("a context of the method binds Pool and Executor to it", async () => {
    const ctx = getContext(inline);
    await using pool = new ctx.Pool(2);
    assert.equal(pool.startMethod, "inline");
    assert.deepEqual(await pool.map(square, [3]), [9]);
    assert.ok(getAllStartMethods().includes(inline));
  });

  test("Process, Queue, Lock, Value and Manager refuse it, naming the method and what to use", () => {
    const refused = (what: string) => ({
      name: "ProcessError",
      message: new RegExp(
        `"inline" start method cannot make ${what}: it offers pools .* only\\. Make it with \\{ context: "spawn" \\}`,
      ),
    });
    const ctx = getContext(inline);
    assert.throws(() => new Process({ target: square, context: inline }), refused("a Process"));
    assert.throws(() => new ctx.Process({ target: square }), refused("a Process"));
    assert.throws(() => new Queue(0, { context: inline }), refused("a Queue"));
    assert.throws(() => new ctx.JoinableQueue(), refused("a JoinableQueue"));
    assert.throws(() => new Lock({ context: inline }), refused("a Lock"));
    assert.throws(() => new ctx.Event(), refused("an Event"));
    assert.throws(() => new Value("i", 0, { context: inline }), refused("a Value"));
    assert.throws(() => new Manager({ context: inline }), refused("a Manager"));
  });

  test("an unknown method is refused with the registered names", () => {
    assert.throws(() => new Pool({ context: "nowhere" as StartMethod }), {
      name: "TypeError",
      message: 'context must be "spawn", "thread" or "inline" (got "nowhere")',
    });
  });
});
