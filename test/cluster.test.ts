// The cluster start method against a real redis-server (test/redis.ts starts one on a Unix socket,
// installing it first when missing and running as root) and real workers: the `worker` command,
// started with a working directory that is not the project's and --root pointing at it. The Pool
// and executor behaviour cases, then the failure semantics of research/distributed.md §4.2.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import {
  BrokerLostError,
  Manager,
  NoWorkersError,
  Pool,
  ProcessPoolExecutor,
  Queue,
  SerializationError,
  WorkerLostError,
  asCompleted,
  wait,
} from "multiprocessing-ts";
import { add, failOn, failWith, gated, hang, naturals, square } from "./fixtures/cluster-tasks.ts";
import { ownedPools, startWorker, stopWorker } from "./cluster-workers.ts";
import { gone } from "./helpers.ts";
import { type RedisServer, redisUnavailable, startRedis } from "./redis.ts";

const skip = redisUnavailable();
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Runs `work` and counts the jobs BullMQ finished meanwhile (new ids in the queue's finished sets). */
async function jobsRun<T>(socket: string, work: () => Promise<T>): Promise<{ value: T; jobs: number }> {
  const redis = new Redis({ path: socket, maxRetriesPerRequest: 1 });
  const finished = async () =>
    new Set([
      ...(await redis.zrange("bull:mp:completed", "0", "-1")),
      ...(await redis.zrange("bull:mp:failed", "0", "-1")),
    ]);
  try {
    const before = await finished();
    const value = await work();
    const jobs = [...(await finished())].filter((id) => !before.has(id)).length;
    return { value, jobs };
  } finally {
    redis.disconnect();
  }
}

describe("cluster", { skip, timeout: 120_000 }, () => {
  let server: RedisServer;
  let manager: Manager;
  let cwd: string;
  const workers: ChildProcess[] = [];
  const { own, disposeAll } = ownedPools();

  before(async () => {
    server = await startRedis();
    cwd = mkdtempSync(join(tmpdir(), "mpts-cluster-cwd-"));
    manager = await new Manager({ address: ["127.0.0.1", 0], authkey: "cluster-test" }).start();
    workers.push(...(await Promise.all([startWorker(server.url, cwd), startWorker(server.url, cwd)])));
  });

  after(async () => {
    await disposeAll();
    await Promise.allSettled(workers.map((w) => stopWorker(w, "SIGKILL")));
    await manager?.shutdown();
    await server?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  test("Pool: every method, with chunksize, onProgress and a lambda by source", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 4 }));
    assert.equal(pool.startMethod, "cluster");
    assert.equal(await pool.apply(square, [12]), 144);
    assert.equal(await pool.applyAsync(add, [2, 3]).get(10_000), 5);
    assert.deepEqual(
      await pool.map(square, range(20)),
      range(20).map((x) => x * x),
    );
    const progress: number[] = [];
    assert.deepEqual(
      await pool.map(square, range(10), { chunksize: 3, onProgress: (done) => progress.push(done) }),
      range(10).map((x) => x * x),
    );
    assert.equal(progress.at(-1), 10);
    assert.deepEqual(
      await pool.starmap(add, [
        [1, 2],
        [3, 4],
      ]),
      [3, 7],
    );
    assert.deepEqual(await pool.mapAsync(square, [5]).get(), [25]);
    assert.deepEqual(await pool.starmapAsync(add, [[5, 5]]).get(), [10]);
    assert.deepEqual(await pool.map((x: number) => x + 1, [1, 2, 3]), [2, 3, 4]);
    const firsts: number[] = [];
    for await (const y of pool.imap(square, naturals())) {
      firsts.push(y);
      if (firsts.length === 5) break;
    }
    assert.deepEqual(firsts, [0, 1, 4, 9, 16]);
    const unordered: number[] = [];
    for await (const y of pool.imapUnordered(square, range(8), { chunksize: 2 })) unordered.push(y);
    assert.deepEqual(
      unordered.sort((a, b) => a - b),
      range(8).map((x) => x * x),
    );
  });

  test("map's default chunks are sized for a broker round trip: 256 to 4 096 items", async () => {
    const one = own(new Pool({ cluster: server.url, processes: 1 }));
    const progress: number[] = [];
    const many = range(20_000);
    assert.deepEqual(
      await one.map(square, many, { onProgress: (done) => progress.push(done) }),
      many.map((x) => x * x),
    );
    assert.equal(progress.at(-1), 20_000);
    assert.equal(progress.length, 5, "chunks of at most 4 096 items");
    const four = own(new Pool({ cluster: server.url, processes: 4 }));
    const small: number[] = [];
    await four.map(square, range(100), { onProgress: (done) => small.push(done) });
    assert.equal(small.length, 4, "at least 256 items a chunk, but one chunk per job in flight");
  });

  test("ProcessPoolExecutor: submit, map, wait, asCompleted", async () => {
    const ex = own(new ProcessPoolExecutor({ cluster: { url: server.url }, maxWorkers: 3 }));
    const futures = range(5).map((n) => ex.submit(square, n));
    const { done, notDone } = await wait(futures, { timeout: 30_000 });
    assert.equal(done.size, 5);
    assert.equal(notDone.size, 0);
    const seen: number[] = [];
    for await (const f of asCompleted(futures)) seen.push(await f.result());
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [0, 1, 4, 9, 16],
    );
    assert.deepEqual(await ex.map(square, [1, 2, 3]), [1, 4, 9]);
  });

  test("a task that throws rejects with its own error: class name, fields, cause, the worker's stack", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 2 }));
    const error = (await pool.apply(failWith, ["boom"]).catch((e) => e)) as Error & { code?: string; detail?: unknown };
    assert.equal(error.name, "CodedError");
    assert.equal(error.message, "boom");
    assert.equal(error.code, "E_CODED");
    assert.deepEqual(error.detail, { n: 7 });
    assert.ok(error.cause instanceof RangeError);
    assert.match(error.stack ?? "", /cluster-tasks\.ts/);
    await assert.rejects(pool.map(failOn, range(6), { chunksize: 1 }), { name: "CodedError", message: "item 3" });
    // the pool goes on
    assert.equal(await pool.apply(square, [3]), 9);
  });

  test("a machine-local object fails at submit with SerializationError naming its path; a TCP manager's proxy works", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 2 }));
    const local = new Queue<number>();
    await assert.rejects(pool.apply(gated, [local as never, local as never, 1]), (e: Error) => {
      assert.ok(e instanceof SerializationError, String(e));
      assert.match(e.message, /args\[0\] is a Queue, which exists only on this machine/);
      return true;
    });
    const started = await manager.Queue<number>();
    const release = await manager.Queue<number>();
    const result = pool.apply(gated, [started as never, release as never, 42]);
    const workerPid = await started.get({ timeout: 30_000 });
    assert.ok(
      workers.some((w) => w.pid === workerPid),
      "the task ran on a cluster worker",
    );
    await release.put(1);
    assert.equal(await result, 42);
  });

  test("signal and timeout: a running task is stopped on its worker (its local child ends)", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 2 }));
    const started = await manager.Queue<[number, number]>();
    const controller = new AbortController();
    const call = pool.apply(hang, [started as never], { signal: controller.signal });
    const [childPid] = await started.get({ timeout: 30_000 });
    controller.abort();
    await assert.rejects(call, { name: "AbortError" });
    assert.ok(await gone(childPid, 20_000), "the local child running the task was stopped");
    const timed = pool.apply(hang, [started as never], { timeout: 30_000 });
    const timedOutcome = timed.then(
      () => "resolved",
      (e: Error) => e.message,
    );
    const [second] = await started.get({ timeout: 30_000 });
    await pool.terminate();
    assert.match(await timedOutcome, /terminated/);
    assert.ok(await gone(second, 20_000), "terminate() stopped the running task's local child");
  });

  test("a backlog of calls, sent several to a job: each call keeps its own value or error", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 3000 }));
    assert.equal(await pool.apply(square, [2]), 4);
    const { value: outcomes, jobs } = await jobsRun(server.socket!, () =>
      Promise.allSettled(range(3000).map((i) => pool.applyAsync(failOn, [i % 10]).get())),
    );
    assert.ok(jobs > 0 && jobs <= 3000 / 4, `3000 calls took ${jobs} jobs: they were not sent several to a job`);
    outcomes.forEach((outcome, i) => {
      if (i % 10 === 3) {
        assert.equal(outcome.status, "rejected", `call ${i}`);
        const error = (outcome as PromiseRejectedResult).reason as Error & { code?: string };
        assert.equal(error.name, "CodedError");
        assert.equal(error.message, "item 3");
        assert.equal(error.code, "E_CODED");
      } else assert.deepEqual(outcome, { status: "fulfilled", value: i % 10 }, `call ${i}`);
    });
    const stats = pool.stats();
    assert.equal(stats.completed + stats.failed, 3001);
    assert.equal(stats.failed, 300);
  });

  test("a backlog of small map chunks, sent several to a job: results in order, a failing chunk's error", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 3000 }));
    assert.equal(await pool.apply(square, [2]), 4);
    const { value, jobs } = await jobsRun(server.socket!, async () => ({
      squares: await pool.map(square, range(3000), { chunksize: 1 }),
      pairs: await pool.starmap(
        add,
        range(3000).map((i) => [i, 1]),
        { chunksize: 2 },
      ),
    }));
    assert.deepEqual(
      value.squares,
      range(3000).map((i) => i * i),
    );
    assert.deepEqual(
      value.pairs,
      range(3000).map((i) => i + 1),
    );
    assert.ok(jobs > 0 && jobs <= 4500 / 4, `4500 chunks took ${jobs} jobs: they were not sent several to a job`);
    await assert.rejects(pool.map(failOn, [...range(2000).map(() => 0), 3], { chunksize: 1 }), {
      name: "CodedError",
      message: "item 3",
    });
  });

  test("stats() shows the connected worker commands: pid, host and state", async () => {
    const pool = own(new Pool({ cluster: server.url, processes: 2 }));
    assert.equal(await pool.apply(square, [2]), 4);
    const idle = pool.stats().workers;
    assert.deepEqual(
      idle.map((w) => w.pid).sort(),
      workers
        .filter((w) => w.exitCode === null && w.signalCode === null)
        .map((w) => w.pid)
        .sort(),
    );
    for (const w of idle) {
      assert.equal(w.host, hostname());
      assert.match(w.name, new RegExp(`-${w.pid}-[0-9a-f]{6}$`));
      assert.ok(w.state === "idle" || w.state === "busy", w.state);
    }
    const started = await manager.Queue<number>();
    const release = await manager.Queue<number>();
    const call = pool.apply(gated, [started as never, release as never, 1]);
    const pid = await started.get({ timeout: 30_000 });
    // the workers' heartbeats (every second) carry their state; the pool reads them every second
    const deadline = Date.now() + 20_000;
    while (pool.stats().workers.find((w) => w.pid === pid)?.state !== "busy" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(pool.stats().workers.find((w) => w.pid === pid)?.state, "busy");
    await release.put(1);
    assert.equal(await call, 1);
  });

  test("no worker on the queue: NoWorkersError after workerWaitTimeout", async () => {
    const pool = own(
      new Pool({ cluster: { url: server.url, queue: "nobody", workerWaitTimeout: 1500 }, processes: 1 }),
    );
    await assert.rejects(pool.apply(square, [1]), (e: Error) => {
      assert.ok(e instanceof NoWorkersError, String(e));
      assert.match(e.message, /multiprocessing-ts worker --connect .* --queue nobody/);
      return true;
    });
  });

  test("a worker SIGKILLed mid-task: the task runs again on another worker; lost twice: WorkerLostError", async (t) => {
    const pool = own(new Pool({ cluster: server.url, processes: 1 }));
    const started = await manager.Queue<number>();
    const release = await manager.Queue<number>();
    const call = pool.apply(gated, [started as never, release as never, 7]);
    const first = await started.get({ timeout: 30_000 });
    const victim = workers.find((w) => w.pid === first)!;
    const killedAt = Date.now();
    await stopWorker(victim, "SIGKILL");
    // the other worker takes the task over
    const second = await started.get({ timeout: 30_000 });
    const rerunAfter = Date.now() - killedAt;
    assert.notEqual(second, first);
    await release.put(1);
    assert.equal(await call, 7);
    const recovered = Date.now() - killedAt;
    t.diagnostic(
      `lost worker's task: started again ${rerunAfter} ms and finished ${recovered} ms after the kill (lockMs 1000)`,
    );
    // the replacement starts after the measure: two processes starting on two cores would slow it
    workers.push(await startWorker(server.url, cwd));
    // BullMQ hands the job over within lockMs + the stalled check's interval (0.5 s here): 0.7-1.6 s
    // measured; the task's start on the other worker (a spawn child, the manager's queues over TCP)
    // took 0.6-1.3 s more on a loaded machine, so the whole is bounded by lockMs + 4 s
    assert.ok(recovered < 1000 + 4000, `finished within lockMs + 4 s of the kill (took ${recovered} ms)`);

    const lost = pool.apply(gated, [started as never, release as never, 8]).catch((e: unknown) => e);
    for (let i = 0; i < 2; i++) {
      const pid = await started.get({ timeout: 30_000 });
      await stopWorker(workers.find((w) => w.pid === pid)!, "SIGKILL");
      workers.push(await startWorker(server.url, cwd));
    }
    const error = await lost;
    assert.ok(error instanceof WorkerLostError, String(error));
  });

  test("MULTIPROCESSING_TS_CLUSTER sends an unchanged program's pools to the cluster; its Queue stays local", async () => {
    const script = fileURLToPath(new URL("./fixtures/cluster-dropin.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), script], {
      env: { ...process.env, MULTIPROCESSING_TS_CLUSTER: server.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const code = await new Promise((resolve) => child.on("exit", resolve));
    clearTimeout(guard);
    assert.equal(code, 0, err);
    assert.deepEqual(JSON.parse(out), {
      pool: "cluster",
      executor: "cluster",
      map: [1, 4, 9],
      submitted: 16,
      queue: 1,
    });
  });

  test("bad cluster values, an unreachable server, a refused password: clear errors naming the URL without its password", async () => {
    assert.throws(() => new Pool({ cluster: "http://x" }), /must start with redis:\/\/, rediss:\/\/ or unix:\/\//);
    assert.throws(() => new Pool({ cluster: 42 as never }), TypeError);
    assert.throws(() => new Pool({ cluster: { url: server.url, queue: "a:b" } }), /queue must be/);
    const missing = own(new Pool({ cluster: `unix://${join(cwd, "nothing.sock")}`, processes: 1 }));
    await assert.rejects(missing.apply(square, [1]), (e: Error) => {
      assert.ok(e instanceof BrokerLostError, String(e));
      assert.match(e.message, /cannot reach the Redis server at unix:\/\/.*nothing\.sock/);
      return true;
    });
    const guarded = await startRedis({ password: "right" });
    try {
      const url = `unix://:wrong@${guarded.socket}`;
      const refused = own(new Pool({ cluster: url, processes: 1 }));
      await assert.rejects(refused.apply(square, [1]), (e: Error) => {
        assert.match(e.message, /refused the password/);
        assert.doesNotMatch(e.message, /wrong/);
        return true;
      });
    } finally {
      await guarded.stop();
    }
  });
});
