// The fault matrix: for Pool, ProcessPoolExecutor and Process, each fault ends in a typed error on
// exactly the affected work, within a bounded time, and a pool keeps working afterwards.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BrokenProcessPool,
  Pool,
  Process,
  ProcessPoolExecutor,
  SerializationError,
  WorkerCrashedError,
} from "multiprocessing-ts";
import {
  answer,
  byteLength,
  exhaustMemory,
  exitWith,
  failInit,
  killSelf,
  throwInTimer,
  unsendable,
} from "./fixtures/chaos-tasks.ts";
import { methods } from "./helpers.ts";

const BIG = 256 * 1024 * 1024;
const crashed = (pattern: RegExp) => (e: Error) => e instanceof WorkerCrashedError && pattern.test(e.message);

for (const method of methods) {
  const faults: { name: string; fn: (...a: any[]) => unknown; args: unknown[]; expect: (e: Error) => boolean }[] = [
    { name: "process.exit(7) in a task", fn: exitWith, args: [7], expect: crashed(/exited with code 7/) },
    { name: "out of memory", fn: exhaustMemory, args: [], expect: crashed(/out of memory/) },
    { name: "an error thrown in a timer", fn: throwInTimer, args: [], expect: crashed(/thrown in a timer/) },
    { name: "a result that cannot be sent", fn: unsendable, args: [], expect: (e) => e instanceof SerializationError },
  ];
  if (method === "spawn") faults.push({ name: "SIGKILL", fn: killSelf, args: [], expect: crashed(/SIGKILL/) });

  describe(`fault matrix: Pool and ProcessPoolExecutor (${method})`, { timeout: 120_000 }, () => {
    for (const fault of faults) {
      test(`${fault.name}: only that call fails, and the pool goes on`, async () => {
        await using pool = new Pool({ processes: 2, context: method, maxHeapMb: 64 });
        const others = Array.from({ length: 6 }, () => pool.apply(answer));
        await assert.rejects(pool.apply(fault.fn, fault.args as never), fault.expect);
        assert.deepEqual(await Promise.all(others), [42, 42, 42, 42, 42, 42]);
        assert.equal(await pool.apply(answer), 42);

        await using ex = new ProcessPoolExecutor({ maxWorkers: 2, context: method, maxHeapMb: 64 });
        const future = ex.submit(fault.fn as (...a: unknown[]) => unknown, ...(fault.args as unknown[]));
        await assert.rejects(future.result(), fault.expect);
        assert.equal(await ex.submit(answer).result(), 42);
      });
    }

    test("a failing initializer: BrokenProcessPool, at once, for every call", async () => {
      await using pool = new Pool({ processes: 2, context: method, initializer: failInit });
      await assert.rejects(pool.apply(answer), BrokenProcessPool);
      await using ex = new ProcessPoolExecutor({ maxWorkers: 2, context: method, initializer: failInit });
      await assert.rejects(ex.submit(answer).result(), BrokenProcessPool);
    });

    test("a 256 MB argument arrives whole", async () => {
      await using pool = new Pool({ processes: 1, context: method });
      assert.equal(await pool.apply(byteLength, [new Uint8Array(BIG)]), BIG);
    });
  });

  describe(`fault matrix: Process (${method})`, { timeout: 120_000 }, () => {
    const exitOf = async (options: ConstructorParameters<typeof Process>[0]) => {
      const p = new Process({ ...options, context: method });
      p.start();
      await p.join();
      return p.exitcode;
    };
    test("exit codes: process.exit(n), error in a timer, out of memory, SIGKILL", async () => {
      assert.equal(await exitOf({ target: exitWith, args: [7] }), 7);
      assert.equal(await exitOf({ target: throwInTimer }), 1);
      const oom = await exitOf({ target: exhaustMemory, maxHeapMb: 64 });
      assert.ok(oom === 1 || oom === -6, `out of memory ends with 1 (thread) or -6 (SIGABRT), got ${oom}`);
      if (method === "spawn") assert.equal(await exitOf({ target: killSelf }), -9);
      assert.equal(await exitOf({ target: byteLength, args: [new Uint8Array(BIG)] }), 0);
    });
  });
}
