// Managers: proxies of server-held objects shared by processes, custom types, remote managers over
// TCP with an authkey, and what happens when the server goes away. Ported from CPython's
// _TestContainers, TestSyncManagerTypes, _TestMyManager and _TestRemoteManager where they apply.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  AuthenticationError,
  BaseManager,
  BrokenBarrierError,
  ClosedError,
  DictProxy,
  EOFError,
  Empty,
  Full,
  ListProxy,
  Manager,
  QueueProxy,
  Pool,
  Process,
  ProcessError,
  RemoteError,
  activeChildren,
} from "multiprocessing-ts";
import {
  FooBar,
  MyManager,
  ServingManager,
  addRemotely,
  clearList,
  countUnderLock,
  drainQueue,
  echoLarge,
  growList,
  mutateDict,
  passBarrier,
  recordInto,
  setValue,
  takeAndExit,
  waitOnCondition,
  waitOnConditionForever,
  waitThenReport,
} from "./fixtures/manager-tasks.ts";
import { gone, methods } from "./helpers.ts";

async function run(target: (...args: any[]) => unknown, ...args: unknown[]): Promise<Process> {
  const p = new Process({ target, args });
  p.start();
  await p.join();
  return p;
}

describe("Manager containers in one process", { timeout: 60_000 }, () => {
  let manager: Manager;
  before(async () => {
    manager = await Manager.start();
  });
  after(() => manager.shutdown());

  test("list: Python's list operations", async () => {
    const l = manager.list<number>([5, 1, 4]);
    await l.extend([2, 3]);
    assert.deepEqual(await l.slice(1, 3), [1, 4]);
    assert.equal(await l.get(-1), 3);
    await l.sort();
    assert.deepEqual(await l.toArray(), [1, 2, 3, 4, 5]);
    await l.sort({ reverse: true });
    assert.deepEqual(await l.toArray(), [5, 4, 3, 2, 1]);
    assert.equal(await l.index(3), 2);
    await assert.rejects(l.index(42), RangeError);
    await assert.rejects(l.get(5), /out of range/);
    const plain = await l.concat([0]);
    assert.ok(Array.isArray(plain) && !(plain instanceof ListProxy), "+ returns a plain array");
    await l.repeat(2);
    assert.equal(await l.size(), 10);
    assert.equal(await l.count(5), 2);
    await l.remove(5);
    assert.equal(await l.count(5), 1);
    assert.equal(await l.pop(), 1);
    const seen: number[] = [];
    for await (const x of l) seen.push(x);
    assert.equal(seen.length, 8);
  });

  test("dict: get with default, pop, popitem, setdefault, update", async () => {
    const d = manager.dict<string, number>({ a: 1 });
    assert.equal(await d.get("missing"), undefined);
    assert.equal(await d.get("missing", 7), 7);
    assert.equal(await d.setdefault("b", 2), 2);
    assert.equal(await d.setdefault("b", 3), 2);
    await d.update(new Map([["c", 3]]));
    assert.deepEqual(await d.keys(), ["a", "b", "c"]);
    assert.deepEqual(await d.popitem(), ["c", 3]);
    assert.equal(await d.pop("a"), 1);
    assert.equal(await d.pop("a", -1), -1);
    await assert.rejects(d.pop("a"), RangeError);
    assert.deepEqual(await d.toObject(), { b: 2 });
    await d.clear();
    await assert.rejects(d.popitem(), RangeError);
  });

  test("nested proxies stay live (test_dict_proxy_nested, test_list_proxy_in_list)", async () => {
    const pets = manager.dict<string, number>({ ferrets: 2, hamsters: 4 });
    const supplies = manager.dict<string, number>({ water: 10, feed: 3 });
    const d = manager.dict<string, DictProxy<string, number>>({ pets, supplies });
    const inner = (await d.get("supplies"))!;
    assert.ok(inner instanceof DictProxy);
    await inner.set("blankets", 5);
    assert.equal(await supplies.get("blankets"), 5);
    await supplies.set("water", 7);
    assert.equal(await (await d.get("supplies"))!.get("water"), 7);
    await d.clear();
    assert.equal(await d.size(), 0);
    assert.equal(await supplies.get("water"), 7);
    assert.equal(await pets.get("hamsters"), 4);

    const a = manager.list<ListProxy<number>>([manager.list([1, 2, 3]), manager.list([4, 5, 6])]);
    await (await a.get(0)).set(-1, 55);
    assert.deepEqual(await (await a.get(0)).toArray(), [1, 2, 55]);
    assert.deepEqual(await (await a.get(1)).toArray(), [4, 5, 6]);
    const b = manager.list<unknown>([[1, 2]]);
    const plain = await b.get(0);
    assert.ok(Array.isArray(plain), "a plain list stored in a list proxy comes back as an array");
  });

  test("proxies stored by a method stay live; a list may hold itself (test_list_proxy_in_list, test_nested_queue)", async () => {
    const inner = manager.list<number>([1, 2]);
    const outer = manager.list<unknown>();
    await outer.append(inner);
    await outer.append(outer);
    const back = (await outer.get(0)) as ListProxy<number>;
    assert.ok(back instanceof ListProxy, "a list appended to a list comes back as a proxy");
    await back.append(3);
    assert.deepEqual(await inner.toArray(), [1, 2, 3]);
    const self = (await outer.get(1)) as ListProxy<unknown>;
    assert.ok(self instanceof ListProxy);
    assert.equal(await self.size(), 2, "the list holds itself");
    await outer.set(0, "replaced");
    assert.equal(await self.get(0), "replaced");

    const d = manager.dict<string, unknown>();
    await d.set("list", inner);
    await d.update({ dict: d });
    const list = (await d.get("list")) as ListProxy<number>;
    assert.ok(list instanceof ListProxy, "a list set in a dict comes back as a proxy");
    assert.deepEqual(await list.toArray(), [1, 2, 3]);
    const sameDict = (await d.get("dict")) as DictProxy<string, unknown>;
    assert.ok(sameDict instanceof DictProxy);
    assert.deepEqual(await sameDict.keys(), ["list", "dict"]);

    const a = manager.Queue<QueueProxy<number>>();
    const b = manager.Queue<number>();
    await a.put(b);
    await b.put(42);
    const got = await a.get();
    assert.ok(got instanceof QueueProxy, "a queue put in a queue comes back as a proxy");
    assert.equal(await got.get(), 42);
  });

  test("Namespace (test_namespace)", async () => {
    const n = manager.Namespace();
    await n.set("name", "Bob");
    await n.set("job", "Builder");
    await n.set("_hidden", "hidden");
    assert.equal(await n.delete("job"), true);
    assert.equal(await n.describe(), 'Namespace(name="Bob")');
    assert.equal(await n.has("job"), false);
    assert.equal(await n.get("_hidden"), "hidden");
  });

  test("Value and Array keep their typecode's width; a bad typecode is a TypeError", async () => {
    const v = manager.Value("h", 32767);
    assert.equal(await v.get(), 32767);
    await assert.rejects(
      v.set(1.5 as never).then(() => v.set("x" as never)),
      TypeError,
    );
    const big = manager.Value("q", 2n ** 33n);
    await big.set(2n ** 34n);
    assert.equal(await big.get(), 2n ** 34n);
    const arr = manager.Array("i", [680, 626, 934]);
    await arr.set(-1, 1);
    assert.deepEqual(await arr.toArray(), [680, 626, 1]);
    const bad = manager.Value("x" as never, 0 as never);
    await assert.rejects(bad.get(), /bad typecode/);
  });

  test("Queue: Full and Empty, nowait variants, timeouts", async () => {
    const q = manager.Queue<number>(1);
    await q.put(1);
    await assert.rejects(q.putNowait(2), Full);
    const t0 = performance.now();
    await assert.rejects(q.put(2, { timeout: 100 }), Full);
    assert.ok(performance.now() - t0 >= 90);
    assert.equal(await q.get(), 1);
    await assert.rejects(q.getNowait(), Empty);
    await assert.rejects(q.get({ timeout: 50 }), Empty);
    const ac = new AbortController();
    const waiting = q.get({ signal: ac.signal });
    ac.abort(new Error("gave up"));
    await assert.rejects(waiting, /gave up/);
    await q.put(9);
    assert.equal(await q.get(), 9, "an aborted get took nothing");
  });

  test("JoinableQueue: join waits for every taskDone", async () => {
    const q = manager.JoinableQueue<number>();
    await q.put(1);
    await q.put(2);
    let joined = false;
    const join = q.join().then(() => (joined = true));
    await q.get();
    await q.taskDone();
    assert.equal(joined, false);
    await q.get();
    await q.taskDone();
    await join;
    assert.equal(joined, true);
    await assert.rejects(q.taskDone(), RangeError);
  });

  test("Lock, RLock, Semaphore, BoundedSemaphore", async () => {
    const lock = manager.Lock();
    assert.equal(await lock.acquire(), true);
    assert.equal(await lock.acquire({ block: false }), false);
    assert.equal(await lock.acquire({ timeout: 50 }), false);
    await lock.release();
    await assert.rejects(lock.release(), ProcessError);
    const r = manager.RLock();
    assert.equal(await r.acquire(), true);
    assert.equal(await r.acquire(), true, "re-entrant for the same process");
    await r.release();
    await r.release();
    await assert.rejects(r.release(), ProcessError);
    const s = manager.BoundedSemaphore(2);
    assert.equal(await s.acquire(), true);
    assert.equal(await s.getValue(), 1);
    await s.release();
    await assert.rejects(s.release(), ProcessError);
    assert.equal(await manager.Lock().withLock(() => 42), 42);
  });

  test("Barrier: abort breaks waiters; a timeout breaks the barrier", async () => {
    const b = manager.Barrier(2);
    assert.equal(await b.parties(), 2);
    const waiting = b.wait();
    await assert.rejects(Promise.all([waiting, b.abort()]), BrokenBarrierError);
    assert.equal(await b.broken(), true);
    await b.reset();
    assert.equal(await b.broken(), false);
    await assert.rejects(b.wait(50), BrokenBarrierError);
    assert.equal(await b.broken(), true);
  });

  test("unknown typeid, create after shutdown, and proxies of a shut-down manager", async () => {
    await assert.rejects(
      (manager as BaseManager).create("Nope"),
      (e: Error) => e instanceof TypeError && /unknown typeid "Nope"/.test(e.message),
    );
    const other = await Manager.start();
    const d = other.dict<string, number>();
    await d.set("x", 1);
    await other.shutdown();
    assert.throws(() => other.dict(), ClosedError);
    await assert.rejects(d.get("x"), ClosedError);
  });
});

for (const method of methods) {
  describe(`Manager across processes (${method})`, { timeout: 120_000 }, () => {
    let manager: Manager;
    before(async () => {
      manager = await Manager.start({ context: method });
    });
    after(() => manager.shutdown());
    const start = (target: (...args: any[]) => unknown, ...args: unknown[]) => {
      const p = new Process({ target, args, context: method });
      p.start();
      return p;
    };
    const runIn = async (target: (...args: any[]) => unknown, ...args: unknown[]) => {
      const p = start(target, ...args);
      await p.join();
      assert.equal(p.exitcode, 0);
    };

    test("children mutate list, dict, Value and Queue; the parent sees it (TestSyncManagerTypes)", async () => {
      const l = manager.list<number>([5]);
      await runIn(growList, l);
      assert.deepEqual(await l.toArray(), [5, 7, 5, 7]);
      await runIn(clearList, l);
      assert.equal(await l.size(), 0);

      const d = manager.dict<string, number>({ foo: 5 });
      const out = manager.list<unknown>();
      await runIn(mutateDict, d, out);
      assert.deepEqual(await out.toArray(), [["bar", 6]]);
      assert.deepEqual(await d.toObject(), { foo: 5, baz: 1 });

      const v = manager.Value("i", 1);
      await runIn(setValue, v, 2);
      assert.equal(await v.get(), 2);

      const q = manager.Queue<number>(2);
      await q.put(5);
      await q.put(6);
      const seen = manager.list<unknown>();
      await runIn(drainQueue, q, seen);
      assert.deepEqual(await seen.toArray(), [2, true, 5, 6]);
    });

    test("two processes counting under a manager Lock get an exact total", async () => {
      const lock = manager.Lock();
      const counter = manager.Value("i", 0);
      const ps = [start(countUnderLock, lock, counter, 100), start(countUnderLock, lock, counter, 100)];
      for (const p of ps) await p.join();
      assert.equal(await counter.get(), 200);
    });

    test("a lock whose holder exits is released, so no one waits forever", async () => {
      const lock = manager.Lock();
      const taken = manager.Event();
      await runIn(takeAndExit, lock, taken);
      assert.equal(await taken.isSet(), true);
      assert.equal(await lock.acquire({ timeout: 10_000 }), true);
      await lock.release();
    });

    test("a process killed while waiting on a Condition leaves its lock free", async () => {
      const cond = manager.Condition();
      const out = manager.Queue<string>();
      const waiter = start(waitOnConditionForever, cond, out);
      assert.equal(await out.get(), "waiting");
      waiter.kill();
      await waiter.join();
      assert.equal(await cond.acquire({ timeout: 10_000 }), true, "the lock went back to no one");
      await cond.release();
    });

    test("Event, Condition and Barrier across processes", async () => {
      const event = manager.Event();
      const out = manager.Queue<string>();
      const waiter = start(waitThenReport, event, out);
      assert.equal(await out.get(), "waiting");
      await event.set();
      assert.equal(await out.get(), "woken");
      await waiter.join();

      const cond = manager.Condition();
      const ready = manager.list<number>();
      const condWaiter = start(waitOnCondition, cond, ready, out);
      assert.equal(await out.get(), "waiting");
      await cond.withLock(async () => {
        await ready.append(1);
        await cond.notifyAll();
      });
      assert.equal(await out.get(), "saw it");
      await condWaiter.join();

      const barrier = manager.Barrier(3);
      const indexes = manager.Queue<number>();
      const ps = [start(passBarrier, barrier, indexes), start(passBarrier, barrier, indexes)];
      const mine = await barrier.wait(30_000);
      const all = [mine, await indexes.get(), await indexes.get()].sort();
      assert.deepEqual(all, [0, 1, 2]);
      for (const p of ps) await p.join();
    });

    test("proxies travel as pool task arguments", async () => {
      const d = manager.dict<string, number>();
      await using pool = new Pool({ processes: 2, context: method });
      const results = await pool.starmap(recordInto, [
        [d, "a", 1],
        [d, "b", 2],
        [d, "c", 3],
      ]);
      assert.deepEqual(results, [1, 2, 3]);
      assert.deepEqual(await d.toObject(), { a: 1, b: 2, c: 3 });
    });
  });
}

describe("BaseManager with registered types (_TestMyManager)", { timeout: 60_000 }, () => {
  for (const method of methods) {
    test(`exposed methods, server errors keep their class, generators iterate (${method})`, async () => {
      await using manager = await new MyManager({ context: method }).start();
      const foo = await manager.create<FooBar>("Foo");
      assert.equal(await foo.f(), "f()");
      await assert.rejects(foo.g(), (e: Error) => e instanceof RangeError && /g\(\) failed/.test(e.message));
      await assert.rejects(foo._callMethod("_h"), RemoteError);
      const bar = await manager.create<FooBar>("Bar");
      assert.equal(await bar.f(), "f()");
      assert.equal(await bar._h(), "_h()");
      await assert.rejects(bar._callMethod("g"), RemoteError);
      const gen = await manager.create<Generator<number>>("squares", 10);
      const seen: number[] = [];
      for await (const x of gen) seen.push(x as number);
      assert.deepEqual(seen, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
      const pid = manager.pid!;
      await manager.shutdown();
      if (method === "spawn") assert.ok(await gone(pid, 5000), "the server process exited");
    });
  }

  test("a registered callable that throws rejects create() with its class", async () => {
    class Failing extends BaseManager {}
    Failing.register("bad", FooBar.prototype.g);
    await using manager = await new Failing({ context: "thread" }).start();
    await assert.rejects(manager.create("bad"), RangeError);
  });
});

describe("Remote managers over TCP (_TestRemoteManager)", { timeout: 60_000 }, () => {
  test("a child connects with a different manager class and the same authkey", async () => {
    const authkey = randomBytes(32).toString("hex");
    await using server = await new ServingManager({ address: ["127.0.0.1", 0], authkey }).start();
    const address = server.address as [string, number];
    assert.equal(address[0], "127.0.0.1");
    assert.ok(address[1] > 0, "port 0 picked a free port");
    await run(addRemotely, address, authkey, 5);
    await run(addRemotely, address, authkey, 7);
    class Reader extends BaseManager {}
    Reader.register("adder");
    await using reader = await new Reader({ address, authkey }).connect();
    const adder = await reader.create<{ add(n: number): number }>("adder");
    assert.equal(await adder.add(0), 12);
  });

  for (const method of methods) {
    test(`another manager of this process that connects and disconnects leaves the server's own connection working (${method})`, async () => {
      const authkey = randomBytes(16).toString("hex");
      await using server = await new ServingManager({ address: ["127.0.0.1", 0], authkey, context: method }).start();
      const serverProcess = activeChildren().find((p) => p.name === "ServingManager-server");
      assert.ok(serverProcess, "the server runs in a child");
      const kept = await server.create<{ add(n: number): number }>("adder");
      class Reader extends BaseManager {}
      Reader.register("adder");
      await using reader = await new Reader({ address: server.address, authkey }).connect();
      await reader.create("adder");
      const inFlight = kept.add(1);
      await reader.shutdown();
      assert.equal(await inFlight, 1, "a call of the first manager in flight is not cut off");
      await server.shutdown();
      assert.equal(serverProcess.exitcode, 0, "the shutdown request reached the server: it was not killed");
    });
  }

  test("a wrong authkey gets AuthenticationError and no data", async () => {
    await using server = await new ServingManager({ address: ["127.0.0.1", 0], authkey: "right" }).start();
    class Intruder extends BaseManager {}
    await assert.rejects(new Intruder({ address: server.address, authkey: "wrong" }).connect(), AuthenticationError);
    await assert.rejects(
      new Intruder({ address: server.address }).connect().then(() => {}),
      AuthenticationError,
    );
  });

  test("getServer() serves from this process until a client shuts it down", async () => {
    const manager = new ServingManager({ address: ["127.0.0.1", 0], authkey: "k" });
    const server = await manager.getServer();
    const served = server.serveForever();
    class Client extends BaseManager {}
    Client.register("adder");
    await using client = await new Client({ address: server.address, authkey: "k" }).connect();
    const adder = await client.create<{ add(n: number): number }>("adder");
    assert.equal(await adder.add(3), 3);
    server.close();
    await served;
  });
});

describe("A thread manager and clients in this process's threads", { timeout: 60_000 }, () => {
  test("values of hundreds of KB travel both ways, from this thread and a child thread", async () => {
    await using manager = await Manager.start({ context: "thread" });
    const d = manager.dict<string, unknown>();
    const text = "x".repeat(600 * 1024);
    const bytes = new Uint8Array(700 * 1024).map((_, i) => i % 251);
    await d.set("text", text);
    await d.set("bytes", bytes);
    assert.equal(await d.get("text"), text);
    assert.deepEqual(await d.get("bytes"), bytes);
    const child = new Process({ target: echoLarge, args: [d, "bytes"], context: "thread" });
    child.start();
    await child.join();
    assert.equal(child.exitcode, 0);
    assert.deepEqual(await d.get("bytes-back"), bytes);
  });

  test("an aborted get leaves the next item for the next get", async () => {
    await using manager = await Manager.start({ context: "thread" });
    const q = manager.Queue<number>();
    const abort = new AbortController();
    const waiting = q.get({ signal: abort.signal });
    assert.equal(await q.qsize(), 0); // the get has reached the server before it is aborted
    abort.abort(new Error("no longer wanted"));
    await assert.rejects(waiting, /no longer wanted/);
    await q.put(7);
    assert.equal(await q.get({ timeout: 10_000 }), 7);
  });

  test("a shutdown while calls wait: they reject, none hangs", async () => {
    const manager = await Manager.start({ context: "thread" });
    const q = manager.Queue<number>();
    const waiting = Promise.allSettled([q.get(), q.get({ timeout: 60_000 })]);
    assert.equal(await q.qsize(), 0);
    await manager.shutdown();
    const outcomes = await waiting;
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["rejected", "rejected"],
    );
    await assert.rejects(q.put(1), ClosedError);
  });
});

describe("Manager faults", { timeout: 60_000 }, () => {
  test("a killed server: calls in flight reject with EOFError, later ones with a ProcessError", async () => {
    const manager = await Manager.start({ context: "spawn" });
    const q = manager.Queue<number>();
    await q.put(1);
    await q.get();
    const waiting = q.get();
    process.kill(manager.pid!, "SIGKILL");
    await assert.rejects(waiting, EOFError);
    await assert.rejects(q.put(1), ProcessError);
    await manager.shutdown();
  });

  test("a non-exposed method and a bad argument are refused without harming the server", async () => {
    await using manager = await Manager.start({ context: "thread" });
    const d = manager.dict<string, unknown>();
    await assert.rejects(d._callMethod("constructor"), RemoteError);
    await assert.rejects(d.set("f", (() => 1) as unknown), (e: Error) => e.name === "SerializationError");
    await d.set("ok", 1);
    assert.equal(await d.get("ok"), 1);
  });
});
