/**
 * `multiprocessing-ts worker`: a cluster worker, a BullMQ `Worker` whose jobs run on a local Pool
 * of this library.
 *
 *   Redis queue ─► BullMQ Worker (this event loop: locks, stalled checks, cancel messages)
 *                    └─► local Pool (threads by default) ─► runClusterTask(root, job) ─► job's return value
 *
 * The tasks never run on this event loop, so a CPU-bound task cannot stop BullMQ from renewing its
 * locks (the false-stall bug of in-process processors), every core is used, and a task that crashes
 * or exhausts memory kills a local child (the job fails with WorkerCrashedError), not the worker.
 *
 * Around BullMQ: a heartbeat in a sorted set tells pools that a worker is connected; a pub/sub
 * channel carries the ids of jobs a pool gave up on, whose local child is then stopped; a job of a
 * pool whose heartbeat key is gone (its caller died) is not run.
 */
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { dieWithParent } from "../backends/parent-watch.js";
import { CancelledError } from "../errors.js";
import { Pool } from "../pool.js";
import { libraryCodeRef } from "../internal/reduction.js";
import { cpuCount } from "../util.js";
import { clusterTaskModule } from "../internal/paths.js";
import { runClusterTask } from "./cluster-task.js";
import {
  type WireJob,
  type WireResult,
  type WireResults,
  setProjectRoot,
  wireOutcome,
} from "../internal/cluster/protocol.js";
import { type WorkerInfo, keys, loadBullmq, openRedis } from "../internal/cluster/redis.js";
import { DEFAULT_QUEUE, checkQueueName, connectError, parseRedisUrl } from "../internal/cluster/target.js";
import { WorkerStatus } from "../internal/cluster/worker-status.js";

/** The worker command's usage (also `multiprocessing-ts worker --help`). */
export const WORKER_USAGE = `usage: multiprocessing-ts worker --connect <url> [--processes N] [--context thread|spawn]
                              [--root DIR] [--queue NAME] [--lock-ms MS]

Runs cluster tasks: takes the jobs that cluster pools (new Pool({ cluster: url })) put on a Redis
queue and runs each on a local pool of this machine. Prints one line once connected. SIGTERM or
SIGINT finishes the running jobs and exits 0; a second signal exits at once. On a terminal, a
status line on stderr shows the jobs done, running and the rate (nothing of it goes to a file or pipe).

  --connect URL   the Redis server: redis://[:password@]host:port[/db], rediss://… (TLS) or
                  unix:///path/redis.sock (required)
  --processes N   local workers, the most tasks run at once here (default: the number of cores)
  --context M     the local pool's start method: thread (default) or spawn
  --root DIR      the project folder task modules are imported from; the caller's modules must be
                  the same files under it (default: the working directory). Nothing outside it is imported.
  --queue NAME    the queue to serve (default ${DEFAULT_QUEUE}); the pools' { cluster: { url, queue } } must match
  --lock-ms MS    how long a job's lock lasts without renewal (default 5000): a worker that dies
                  mid-task has its task run again on another worker within this plus 1 s

Environment: MULTIPROCESSING_TS_WORKER_PARENT=PID makes the worker (and its local children) exit
when process PID, the one that started it, ends, even if PID is killed (for supervisors and tests).

Anyone who can write to the Redis server can run code on this worker: protect it with a password
or ACL, use rediss:// across networks, and bind it to a private address.
`;

interface WorkerFlags {
  url: string;
  processes: number;
  context: "thread" | "spawn";
  root: string;
  queue: string;
  lockMs: number;
}

function parseFlags(argv: string[]): WorkerFlags {
  const flags: Partial<WorkerFlags> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    const need = () => {
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${flag} needs a value`);
      i++;
      return value;
    };
    const integer = () => {
      const v = need();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer (got ${v})`);
      return n;
    };
    switch (flag) {
      case "--connect":
        flags.url = need();
        break;
      case "--processes":
        flags.processes = integer();
        break;
      case "--context": {
        const v = need();
        if (v !== "thread" && v !== "spawn") throw new UsageError(`--context must be thread or spawn (got ${v})`);
        flags.context = v;
        break;
      }
      case "--root":
        flags.root = resolve(need());
        break;
      case "--queue":
        flags.queue = need();
        break;
      case "--lock-ms":
        flags.lockMs = integer();
        break;
      default:
        throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  if (!flags.url) throw new UsageError("--connect <url> is required");
  const root = flags.root ?? process.cwd();
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`--root ${root} is not a folder`);
  try {
    checkQueueName(flags.queue ?? DEFAULT_QUEUE, "--queue");
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    url: flags.url,
    processes: flags.processes ?? cpuCount(),
    context: flags.context ?? "thread",
    root,
    queue: flags.queue ?? DEFAULT_QUEUE,
    lockMs: flags.lockMs ?? 5000,
  };
}

class UsageError extends Error {}

/**
 * The environment variable naming the pid of the process that started this worker. When set, the
 * worker dies with that process, as a "spawn" child dies with its pool, even when it is SIGKILLed:
 * a supervisor or a test runner that starts workers never leaves them running behind it.
 */
export const WORKER_PARENT_ENV = "MULTIPROCESSING_TS_WORKER_PARENT";

/** Applies {@link WORKER_PARENT_ENV}; returns an error message when its value is bad or the parent is already gone. */
function watchParent(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const pid = Number(value);
  if (!Number.isInteger(pid) || pid < 1) {
    return `${WORKER_PARENT_ENV} must be the pid of the process that started the worker (got ${JSON.stringify(value)})`;
  }
  if (!dieWithParent(pid))
    return `the process ${pid} named by ${WORKER_PARENT_ENV} is not this worker's parent (or is gone)`;
  return undefined;
}

/** Runs the worker command until SIGTERM or SIGINT; sets the exit code on a usage or connection error. */
export async function runWorker(argv: string[]): Promise<void> {
  let flags: WorkerFlags;
  let target: ReturnType<typeof parseRedisUrl>;
  try {
    flags = parseFlags(argv);
    target = parseRedisUrl(flags.url, "--connect");
  } catch (error) {
    console.error(`multiprocessing-ts worker: ${(error as Error).message}\n\n${WORKER_USAGE}`);
    process.exitCode = 2;
    return;
  }
  const parentError = watchParent(process.env[WORKER_PARENT_ENV]);
  if (parentError) {
    console.error(`multiprocessing-ts worker: ${parentError}`);
    process.exitCode = 2;
    return;
  }
  const display = { display: target.display };
  let redis: Awaited<ReturnType<typeof openRedis>>;
  try {
    redis = await openRedis(target.connection, 5000);
  } catch (error) {
    console.error(`multiprocessing-ts worker: ${connectError(display, error).message}`);
    process.exitCode = 1;
    return;
  }
  const { Worker } = await loadBullmq();
  setProjectRoot(flags.root);
  libraryCodeRef(runClusterTask, clusterTaskModule);
  const pool = new Pool({ processes: flags.processes, context: flags.context });
  const k = keys(flags.queue);
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const status = WorkerStatus.open(process.stderr);
  // every line of output blanks the status line first (stdout and stderr may be one terminal)
  const say = (text: string) => {
    status?.clear();
    console.log(text);
  };
  const livePools = new Map<string, number>(); // pool id -> until when its heartbeat was seen

  const subscriber = redis.duplicate();
  subscriber.on("error", () => {});
  await subscriber.subscribe(k.cancel);
  // BullMQ aborts the signal it gave the job's processor (no-op for a job not running here)
  subscriber.on("message", (_channel: string, jobId: string) => worker?.cancelJob(jobId));

  // what pools' stats() show of this worker, refreshed with the heartbeat
  const tally = { running: 0, completed: 0, stopping: false };
  // two jobs per local process: one runs while the next one's arguments come and go
  const concurrency = flags.processes * 2;
  const beat = async () => {
    const now = Date.now();
    const info: WorkerInfo = {
      pid: process.pid,
      host: hostname(),
      state: tally.stopping ? "stopping" : tally.running > 0 ? "busy" : "idle",
      completed: tally.completed,
      slots: concurrency,
    };
    await redis
      .multi()
      .zadd(k.workers, now + 3 * 1000, id)
      .zremrangebyscore(k.workers, "-inf", now)
      .set(k.worker(id), JSON.stringify(info), "PX", 3 * 1000)
      .exec();
  };
  await beat();
  const heartbeat = setInterval(() => beat().catch(() => {}), 1000);

  const poolAlive = async (poolId: string): Promise<boolean> => {
    if ((livePools.get(poolId) ?? 0) > Date.now()) return true;
    const alive = (await redis.exists(k.pool(poolId))) === 1;
    if (alive) livePools.set(poolId, Date.now() + 1000);
    return alive;
  };

  let worker: import("bullmq").Worker | undefined;
  const processor = async (job: { id?: string; data: WireJob }, _token?: string, signal?: AbortSignal) => {
    const data = job.data;
    if (data?.v !== 1) {
      return wireOutcome({
        ok: false,
        error: new TypeError("not a multiprocessing-ts cluster job (protocol version)"),
      });
    }
    if (!(await poolAlive(data.pool))) {
      return wireOutcome({ ok: false, error: new CancelledError("the pool that submitted this task is gone") });
    }
    let outcome: WireResult | WireResults | undefined;
    status?.started();
    tally.running++;
    try {
      outcome = await pool.apply(runClusterTask, [flags.root, data], signal ? { signal } : {});
      return outcome;
    } catch (error) {
      outcome = wireOutcome({ ok: false, error });
      return outcome;
    } finally {
      status?.finished(outcome?.ok === true);
      tally.running--;
      tally.completed++;
    }
  };

  worker = new Worker(flags.queue, processor as never, {
    connection: { ...target.connection, maxRetriesPerRequest: null },
    concurrency,
    lockDuration: flags.lockMs,
    // A lost worker's job goes back to the queue at the first stalled check after its lock expired:
    // at most lockMs + stalledInterval after the loss. At most 1 s, so that the job runs again within
    // lockMs + 2 s (half the lock, 2.5 s, with the default 5 s lock made that 7.5 s); one check a
    // second across all workers (BullMQ runs it on one worker per interval) costs Redis next to nothing.
    stalledInterval: Math.min(1000, Math.max(250, Math.floor(flags.lockMs / 2))),
    maxStalledCount: 1,
    autorun: true,
  });
  let lastError = 0;
  worker.on("error", (error: Error) => {
    if (Date.now() - lastError < 5000) return;
    lastError = Date.now();
    status?.clear();
    console.error(`multiprocessing-ts worker: ${error.message}`);
  });
  await worker.waitUntilReady();
  say(
    `multiprocessing-ts worker ${id}: connected to ${target.display}, queue ${flags.queue}, ${flags.processes} processes (${flags.context}), root ${flags.root}`,
  );

  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(signal === "SIGINT" ? 130 : 143);
      stopping = true;
      tally.stopping = true;
      beat().catch(() => {});
      say(`multiprocessing-ts worker ${id}: ${signal}: finishing the running jobs`);
      resolveStop();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  await worker.close();
  clearInterval(heartbeat);
  await redis.zrem(k.workers, id).catch(() => {});
  await redis.del(k.worker(id)).catch(() => {});
  await pool.terminate();
  subscriber.disconnect();
  await redis.quit().catch(() => redis.disconnect());
  process.exitCode = 0;
  status?.end();
  console.log(`multiprocessing-ts worker ${id}: stopped`);
}
