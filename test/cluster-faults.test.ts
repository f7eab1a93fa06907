// Cluster failure cases against a real redis-server and real worker commands: the pool's
// connections killed while its tasks run, Redis gone for longer than brokerTimeout, two pools on
// one queue, a module that differs between caller and worker, a job BullMQ ran twice, and workers
// that die with the process that started them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { BrokerLostError, Manager, Pool } from "multiprocessing-ts";
import { cli, connected, ownedPools, root, startWorker, stopWorker } from "./cluster-workers.ts";
import { version } from "./fixtures/cluster-mismatch.ts";
import { add, gated, square } from "./fixtures/cluster-tasks.ts";
import { alive, gone } from "./helpers.ts";
import { type RedisServer, redisUnavailable, startRedis } from "./redis.ts";

const skip = redisUnavailable();
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The ids of the server's clients other than `self`. */
async function clientIds(admin: Redis): Promise<Set<string>> {
  const list = (await admin.client("LIST")) as string;
  const me = String(await admin.client("ID"));
  const ids = new Set<string>();
  for (const line of list.split("\n")) {
    const id = /(?:^| )id=(\d+)/.exec(line)?.[1];
    if (id && id !== me) ids.add(id);
  }
  return ids;
}

describe("cluster failures", { skip, timeout: 180_000 }, () => {
  let server: RedisServer;
  let admin: Redis;
  let manager: Manager;
  let cwd: string;
  const workers: ChildProcess[] = [];
  const { own, disposeAll } = ownedPools();

  before(async () => {
    server = await startRedis();
    admin = new Redis({ path: server.socket!, lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    cwd = mkdtempSync(join(tmpdir(), "mpts-cluster-faults-"));
    manager = await new Manager({ address: ["127.0.0.1", 0], authkey: "cluster-faults" }).start();
    workers.push(...(await Promise.all([startWorker(server.url, cwd), startWorker(server.url, cwd)])));
  });

  after(async () => {
    await disposeAll();
    for (const w of workers) if (w.pid && alive(w.pid)) w.kill("SIGCONT");
    await Promise.allSettled(workers.map((w) => stopWorker(w, "SIGKILL")));
    admin?.disconnect();
    await manager?.shutdown();
    await server?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  test("the pool's connections killed while its tasks run: it reconnects, every result arrives once", async () => {
    const baseline = await clientIds(admin);
    const pool = own(new Pool({ cluster: server.url, processes: 4 }));
    assert.equal(await pool.apply(square, [3]), 9); // connected
    const started = await manager.Queue<number>();
    const release = await manager.Queue<number>();
    const progress: number[] = [];
    const call = pool.starmap(
      gated,
      range(2).map((i) => [started as never, release as never, i] as [never, never, number]),
      { chunksize: 1, onProgress: (done) => progress.push(done) },
    );
    // two tasks: each worker runs two at once, so both start wherever BullMQ puts them
    for (let i = 0; i < 2; i++) await started.get({ timeout: 30_000 });
    // the pool's connections are the ones opened since the baseline; kill them for two seconds,
    // each new one as soon as it appears
    let killed = 0;
    const end = Date.now() + 2000;
    while (Date.now() < end) {
      for (const id of await clientIds(admin)) {
        if (!baseline.has(id)) {
          await admin.client("KILL", "ID", id).catch(() => 0);
          killed++;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(killed >= 3, `the pool's connections were killed (${killed})`);
    for (let i = 0; i < 2; i++) await release.put(1);
    assert.deepEqual(await call, range(2));
    assert.deepEqual(progress, [1, 2]);
    assert.deepEqual(
      await pool.map(square, range(10), { chunksize: 1 }),
      range(10).map((x) => x * x),
    );
    assert.equal(pool.stats().completed, 1 + 2 + 10);
  });

  test("a call submitted while the pool is reconnecting, with nothing in flight, is sent once it is back", async () => {
    const baseline = await clientIds(admin);
    const pool = own(new Pool({ cluster: server.url, processes: 2 }));
    assert.equal(await pool.apply(square, [3]), 9); // connected, and idle
    const rejected = async () => Number(/rejected_connections:(\d+)/.exec(await admin.info("stats"))![1]);
    const before = await rejected();
    // no new connection is accepted: the pool's, once killed, are refused at every attempt
    await admin.config("SET", "maxclients", "1");
    try {
      for (const id of await clientIds(admin)) if (!baseline.has(id)) await admin.client("KILL", "ID", id);
      // a refused attempt comes after the pool saw its connection close: three rounds of its three
      while ((await rejected()) < before + 9) await new Promise((resolve) => setTimeout(resolve, 20));
      const call = pool.apply(square, [7]);
      await admin.config("SET", "maxclients", "10000");
      const outcome = await Promise.race([
        call,
        new Promise((resolve) => setTimeout(() => resolve("not sent within 20 s of the reconnect"), 20_000)),
      ]);
      assert.equal(outcome, 49);
    } finally {
      await admin.config("SET", "maxclients", "10000");
    }
  });

  test("Redis gone for longer than brokerTimeout: outstanding calls reject with BrokerLostError", async () => {
    const lone = await startRedis();
    try {
      const pool = own(
        new Pool({ cluster: { url: lone.url, brokerTimeout: 1500, workerWaitTimeout: 120_000 }, processes: 2 }),
      );
      const calls = [pool.apply(square, [1]), pool.map(square, range(5))].map((p) =>
        p.then(
          () => "resolved",
          (e: unknown) => e,
        ),
      );
      // the jobs are on the queue once Redis holds them
      const peek = new Redis({ path: lone.socket!, maxRetriesPerRequest: 1 });
      try {
        while ((await peek.llen("bull:mp:wait")) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      } finally {
        peek.disconnect();
      }
      const stoppedAt = Date.now();
      await lone.stop();
      for (const outcome of await Promise.all(calls)) {
        assert.ok(outcome instanceof BrokerLostError, String(outcome));
        assert.match((outcome as Error).message, /brokerTimeout \(1500 ms\)/);
      }
      assert.ok(Date.now() - stoppedAt < 1500 + 15_000, "rejected soon after brokerTimeout");
      await assert.rejects(pool.apply(square, [2]), BrokerLostError);
      // closing a pool whose server is gone does not wait for the server
      const closing = (async () => {
        await pool.terminate();
        await pool.join();
        return "joined";
      })();
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise((resolve) => (timer = setTimeout(resolve, 20_000, "still waiting after 20 s")));
      assert.equal(await Promise.race([closing, bound]), "joined");
      clearTimeout(timer);
    } finally {
      await lone.stop().catch(() => {});
    }
  });

  test("two pools on one Redis and one queue never see each other's results", async () => {
    const a = own(new Pool({ cluster: server.url, processes: 3 }));
    const b = own(new Pool({ cluster: server.url, processes: 3 }));
    const [squares, sums] = await Promise.all([
      a.map(square, range(40), { chunksize: 1 }),
      b.starmap(
        add,
        range(40).map((i) => [i, 1000] as [number, number]),
        { chunksize: 1 },
      ),
    ]);
    assert.deepEqual(
      squares,
      range(40).map((x) => x * x),
    );
    assert.deepEqual(
      sums,
      range(40).map((x) => x + 1000),
    );
    assert.equal(a.stats().completed, 40);
    assert.equal(b.stats().completed, 40);
  });

  test("a worker runs a module as it first loaded it; a caller whose text differs is refused, naming the file", async () => {
    const file = fileURLToPath(new URL("./fixtures/cluster-mismatch.ts", import.meta.url));
    const text = readFileSync(file, "utf8");
    // a worker of its own queue, with one local child, so that every job meets the same child
    const flags = ["--queue", "mismatch", "--processes", "1"];
    const cluster = { url: server.url, queue: "mismatch" };
    let worker = await startWorker(server.url, cwd, flags);
    workers.push(worker);
    try {
      const before = own(new Pool({ cluster, processes: 1 }));
      assert.equal(await before.apply(version, []), 1);
      // the file changes on disk; the worker's child still runs what it loaded, which is this caller's code
      writeFileSync(file, text.replace("return 1;", "return 22;"));
      assert.equal(await before.apply(version, []), 1);
      // a caller with the new text: refused until the worker is restarted
      const after = own(new Pool({ cluster, processes: 1 }));
      await assert.rejects(after.apply(version, []), (e: Error) => {
        assert.match(e.message, /test\/fixtures\/cluster-mismatch\.ts/);
        assert.match(e.message, /restart workers whose code changed since they started/);
        return true;
      });
      // a restarted worker loads the file as it is now, which is not the first caller's code
      await stopWorker(worker);
      worker = await startWorker(server.url, cwd, flags);
      workers.push(worker);
      await assert.rejects(before.apply(version, []), (e: Error) => {
        assert.match(e.message, /test\/fixtures\/cluster-mismatch\.ts differs from the caller's/);
        assert.match(e.message, /deploy the same code/);
        return true;
      });
    } finally {
      writeFileSync(file, text);
      await stopWorker(worker);
    }
  });

  test("a TypeScript task module on a worker under plain node: an error saying to start the worker under tsx", async () => {
    // a worker of its own queue, started without tsx (Node.js without type stripping cannot import .ts)
    const plain = spawn(
      process.execPath,
      [cli, "worker", "--connect", server.url, "--root", root, "--processes", "1", "--queue", "plain"],
      {
        cwd,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, MULTIPROCESSING_TS_WORKER_PARENT: String(process.pid) },
      },
    );
    workers.push(await connected(plain));
    const pool = own(new Pool({ cluster: { url: server.url, queue: "plain" }, processes: 1 }));
    const outcome = await pool.apply(square, [3]).catch((e: Error) => e);
    if (outcome === 9) {
      // this Node.js strips types by itself: the worker imports the module, as it should
      assert.ok(
        (process.features as { typescript?: unknown }).typescript,
        "a .ts module ran under plain node without type stripping",
      );
      return;
    }
    assert.ok(outcome instanceof Error, String(outcome));
    assert.match(
      outcome.message,
      /^test\/fixtures\/cluster-tasks\.ts is TypeScript, and this cluster worker runs under plain Node\.js v[\d.]+, which cannot import it: start the worker under tsx \(node --import tsx /,
    );
  });

  test("a job BullMQ ran twice (its worker froze past the lock, then went on): one result reaches the caller", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 1 }));
    const started = await manager.Queue<number>();
    const release = await manager.Queue<number>();
    const progress: number[] = [];
    const call = pool.starmap(gated, [[started as never, release as never, 5]], {
      onProgress: (done) => progress.push(done),
    });
    const first = await started.get({ timeout: 30_000 });
    const frozen = workers.find((w) => w.pid === first)!;
    frozen.kill("SIGSTOP");
    // its lock expires; the other worker runs the job again
    const second = await started.get({ timeout: 30_000 });
    assert.notEqual(second, first);
    frozen.kill("SIGCONT");
    await release.put(1);
    await release.put(1);
    assert.deepEqual(await call, [5]);
    assert.deepEqual(progress, [1]);
    // both runs are over: the frozen worker's late outcome changes nothing
    assert.equal(await pool.apply(square, [4]), 16);
    assert.equal(pool.stats().completed, 2);
    assert.equal(pool.stats().failed, 0);
  });

  test("a worker started with MULTIPROCESSING_TS_WORKER_PARENT dies with its parent, even a SIGKILLed one", async () => {
    const script = fileURLToPath(new URL("./fixtures/cluster-worker-parent.ts", import.meta.url));
    const parent = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), script, server.url, cwd], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const guard = setTimeout(() => parent.kill("SIGKILL"), 60_000);
    try {
      const workerPid = await new Promise<number>((resolve, reject) => {
        let out = "";
        parent.stdout!.on("data", (d) => {
          out += d;
          if (out.includes("\n")) resolve(Number(out.trim()));
        });
        parent.on("exit", (code) => reject(new Error(`the parent exited with ${code}`)));
      });
      assert.ok(alive(workerPid));
      parent.kill("SIGKILL");
      assert.ok(await gone(workerPid, 15_000), "the worker ended with its parent");
    } finally {
      clearTimeout(guard);
      parent.kill("SIGKILL");
    }
  });
});
