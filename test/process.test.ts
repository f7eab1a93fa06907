// Process behaviour under every start method. Ported from CPython's _TestProcess where it applies
// (exit codes, join(timeout), close, subclassing, daemons, nested children).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BootstrapError,
  Pipe,
  Process,
  ProcessError,
  Queue,
  SerializationError,
  activeChildren,
  cpuCount,
  currentProcess,
  getContext,
  parentProcess,
} from "multiprocessing-ts";
import {
  Recorder,
  exitsWith,
  fails,
  holdThenEnd,
  identity,
  putAll,
  report,
  returnsNormally,
  spawnGrandchild,
  tryChild,
  waitForever,
} from "./fixtures/tasks.ts";
import { methods } from "./helpers.ts";

for (const method of methods) {
  describe(`Process (${method})`, { timeout: 180_000 }, () => {
    const ctx = getContext(method);

    test("start, join and exit code 0; state before and after", async () => {
      const p = new ctx.Process({ target: returnsNormally });
      assert.equal(p.exitcode, null);
      assert.equal(p.pid, undefined);
      assert.match(p.name, /^Process-\d+$/);
      assert.equal(p.startMethod, method);
      assert.equal(p.start(), p, "start() returns the process");
      assert.equal(typeof p.pid, "number");
      await p.join();
      assert.equal(p.exitcode, 0);
      assert.equal(p.isAlive(), false);
      if (method === "thread") assert.equal(p.pid, process.pid);
      else assert.notEqual(p.pid, process.pid);
    });

    test("exit codes: thrown error 1, process.exit(n) n, terminate -15, kill -9", async () => {
      const thrown = new ctx.Process({ target: fails, args: ["boom"] }).start();
      const exited = new ctx.Process({ target: exitsWith, args: [3] }).start();
      const started = new Queue<number>();
      const terminated = new ctx.Process({ target: waitForever, args: [started] }).start();
      const killed = new ctx.Process({ target: waitForever, args: [started] }).start();
      await started.get({ timeout: 20_000 });
      await started.get({ timeout: 20_000 });
      assert.equal(terminated.isAlive(), true);
      terminated.terminate();
      killed.kill();
      await Promise.all([thrown.join(), exited.join(), terminated.join(), killed.join()]);
      assert.equal(thrown.exitcode, 1);
      assert.equal(exited.exitcode, 3);
      assert.equal(terminated.exitcode, -15);
      assert.equal(killed.exitcode, -9);
    });

    // a wake-up of the child's wait landing as it is stopped: with threads, the whole program aborted
    test("a child stopped just as the message it waits for arrives: the program goes on", async () => {
      for (let i = 0; i < 30; i++) {
        const [parent, child] = Pipe();
        const p = new ctx.Process({ target: holdThenEnd, args: [child, "wait"] }).start();
        child.close();
        assert.equal(await parent.recv(), "ready");
        parent.send("go");
        p.kill();
        await p.join();
        assert.equal(p.exitcode, -9);
      }
    });

    test("join(timeout) returns while the child still runs", async () => {
      const started = new Queue<number>();
      const p = new ctx.Process({ target: waitForever, args: [started] }).start();
      await started.get({ timeout: 20_000 });
      const t0 = performance.now();
      await p.join(200);
      const waited = performance.now() - t0;
      assert.ok(waited >= 150 && waited < 5000, `join(200) waited ${waited} ms`);
      assert.equal(p.isAlive(), true);
      assert.equal(p.exitcode, null);
      assert.ok(activeChildren().includes(p));
      p.kill();
      await p.join();
      assert.ok(!activeChildren().includes(p));
    });

    test("start() twice, join() before start, close() while running", async () => {
      const p = new ctx.Process({ target: returnsNormally });
      await assert.rejects(p.join(), /started process/);
      p.start();
      assert.throws(() => p.start(), /twice/);
      await p.join();
      const started = new Queue<number>();
      const running = new ctx.Process({ target: waitForever, args: [started] }).start();
      await started.get({ timeout: 20_000 });
      assert.throws(() => running.close(), /still running/);
      running.kill();
      await running.join();
      running.close();
      running.close(); // twice is fine
      assert.throws(() => running.isAlive(), /closed/);
      assert.throws(() => running.terminate(), /closed/);
      await assert.rejects(running.join(), /closed/);
    });

    test("arguments arrive by structured clone; a queue arrives connected", async () => {
      const out = new Queue<unknown>();
      const items = [
        1,
        "two",
        { three: [3] },
        new Map([["k", new Set([1])]]),
        new Date(0),
        10n,
        new Float64Array([1.5]),
        null,
        [undefined],
      ];
      const p = new ctx.Process({ target: putAll, args: [out, items] }).start();
      const got: unknown[] = [];
      for (let i = 0; i < items.length; i++) got.push(await out.get({ timeout: 20_000 }));
      await p.join();
      assert.deepEqual(got, items);
      assert.ok(got[6] instanceof Float64Array, "typed arrays keep their type");
    });

    test("names, currentProcess and parentProcess", async () => {
      const out = new Queue<unknown>();
      const p = new ctx.Process({ target: report, args: [out], name: "reporter" }).start();
      const seen = (await out.get({ timeout: 20_000 })) as { name: string; daemon: boolean; parent: unknown };
      await p.join();
      assert.equal(seen.name, "reporter");
      assert.equal(seen.daemon, false);
      assert.deepEqual(seen.parent, { name: "MainProcess", pid: process.pid });
      assert.equal(currentProcess().name, "MainProcess");
      assert.equal(parentProcess(), null);
      assert.ok(cpuCount() >= 1);
    });

    test("nested children are named Parent:N and joined", async () => {
      const out = new Queue<unknown>();
      const p = new ctx.Process({ target: spawnGrandchild, args: [out], name: "outer" }).start();
      const grandchild = (await out.get({ timeout: 30_000 })) as { name: string; parent: { name: string } };
      assert.match(grandchild.name, /^outer:\d+$/);
      assert.equal(grandchild.parent.name, "outer");
      assert.equal(await out.get({ timeout: 30_000 }), "grandchild exit 0");
      await p.join();
      assert.equal(p.exitcode, 0);
    });

    test("a daemon may not start children", async () => {
      const out = new Queue<string>();
      const d = new ctx.Process({ target: tryChild, args: [out], daemon: true });
      assert.equal(d.daemon, true);
      d.start();
      assert.throws(() => {
        d.daemon = false;
      }, /before the process is started/);
      assert.match(await out.get({ timeout: 20_000 }), /daemonic processes are not allowed to have children/);
      await d.join();
    });

    test("a subclass runs its run() with its own fields", async () => {
      const out = new Queue<string>();
      const p = new Recorder("hello", out);
      p.name = "recorder";
      p.start();
      assert.equal(await out.get({ timeout: 20_000 }), "hello in recorder");
      await p.join();
      assert.equal(p.exitcode, 0);
    });

    test("bad input fails at start() with an error that names it", () => {
      assert.throws(
        () => new ctx.Process({ target: identity, args: [{ ok: 1, onDone: () => 1 }] }).start(),
        (error: Error) => error instanceof SerializationError && /args\[0\]\.onDone is a function/.test(error.message),
      );
      const factor = 3;
      assert.throws(
        () => new ctx.Process({ target: (x: number) => x * factor }).start(),
        (error: Error) =>
          error instanceof ProcessError && /'factor'/.test(error.message) && /Export it/.test(error.message),
      );
      assert.throws(() => new ctx.Process({ target: 42 as never }), TypeError);
      assert.throws(() => new ctx.Process({ target: identity, args: "x" as never }), /args must be an array/);
      assert.throws(() => new ctx.Process({ name: 5 as never }), /name must be a string/);
      assert.throws(() => new ctx.Process(null as never), TypeError);
      const p = new ctx.Process({ target: returnsNormally });
      assert.rejects(p.join(-1), RangeError).catch(() => {});
    });

    test("a self-contained lambda travels by source", async () => {
      const out = new Queue<number>();
      const p = new ctx.Process({
        target: async (q: Queue<number>, n: number) => {
          const double = (v: number) => v * 2;
          await q.put(double(n));
        },
        args: [out, 21],
      }).start();
      assert.equal(await out.get({ timeout: 20_000 }), 42);
      await p.join();
    });
  });
}

describe("start methods", () => {
  test("fork and forkserver are refused with advice", () => {
    assert.throws(() => getContext("fork" as never), /Node\.js cannot fork.*"spawn".*"thread"/s);
    assert.throws(() => new Process({ target: identity, context: "forkserver" as never }), /spawn/);
    assert.throws(() => getContext("bogus" as never), TypeError);
  });

  test("BootstrapError is exported with its code", () => {
    assert.equal(new BootstrapError("x").code, "ERR_MP_BOOTSTRAP");
  });
});
