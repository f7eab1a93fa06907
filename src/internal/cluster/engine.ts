/**
 * The pool engine of the "cluster" start method: jobs go to a BullMQ queue on Redis, workers on any
 * machine (`multiprocessing-ts worker`) run them, results come back on the queue's event stream.
 *
 *   submit(job) ─► waiting ─► pump: at most `size` in flight ─► addBulk (jobId = <pool>-<n>)
 *                                  backlogged: calls (or map chunks) of one function, several to a job
 *   QueueEvents: active ─► started;  completed ─► settle once;  failed (stalled twice) ─► WorkerLostError
 *   every second: reconcile up to 256 in-flight jobs from their hashes, in turn (a missed or trimmed
 *   event; every one after a reconnect), the pool's heartbeat key (workers skip the jobs of a caller
 *   that died), NoWorkersError, BrokerLostError
 *
 * Delivery is at least once (BullMQ runs a job again after its worker is lost); each job settles
 * exactly once here: the first outcome wins and the entry is gone. BullMQ and ioredis are loaded on
 * the first pool only.
 */
import { randomBytes } from "node:crypto";
import { BrokerLostError, NoWorkersError, ProcessError, WorkerLostError } from "../../errors.js";
import type { EngineOptions, EngineState, Job, PoolEngine, PoolStats, WorkerStats } from "../pool/engine.js";
import {
  type WireArgs,
  type WireJob,
  type WireRef,
  type WireResult,
  type WireResults,
  encodeRemote,
  readResult,
  taskRef,
} from "./protocol.js";
import { type WorkerInfo, keys, loadBullmq, openRedis } from "./redis.js";
import { type ClusterTarget, clusterTarget, connectError } from "./target.js";

/** The environment variable that sends pools without a `context` to a cluster. */
export const CLUSTER_ENV = "MULTIPROCESSING_TS_CLUSTER";

/** A call or chunk the pool was given. */
interface Entry {
  job: Job;
  /** The BullMQ job carrying it, while it is in flight. */
  sent: Sent | undefined;
}

/** A BullMQ job: one entry, or several calls (or chunks) of one function sent together. */
interface Sent {
  id: string;
  /** The number in `id`: ids grow in the order jobs are sent. */
  seq: number;
  /**
   * What it carries, in order (more than one: a "calls" or "chunks" job, whose return value holds
   * an outcome per entry); an entry whose `sent` is no longer this one was cancelled meanwhile.
   */
  entries: Entry[];
  started: boolean;
  /** When it was sent; -1 when sending it failed (it is sent again once the connection is back). */
  sentAt: number;
}

type Connected = {
  redis: import("ioredis").Redis;
  queue: import("bullmq").Queue;
  events: import("bullmq").QueueEvents;
};

const STALLED = /stalled more than allowable limit/;

/**
 * In-flight jobs whose hashes one periodic check reads at most. The check finds events that were
 * missed (the stream trimmed before this pool read it); reading every job in flight each second
 * cost a pool with thousands in flight more than the jobs themselves.
 */
const RECONCILE_BATCH = 256;

/**
 * The most calls (or map chunks) one job carries. A backlogged pool sends calls of one function
 * several to a job, and a map's small chunks likewise, since each job costs its broker round trips
 * and a hop to a worker's local child whatever it carries; the entries of a job run one after
 * another, so this bounds how long a job of slow calls holds the rest back.
 */
const MAX_CALLS_PER_JOB = 64;

/** A cluster pool's engine; see the file's comment. */
export class ClusterEngine implements PoolEngine {
  readonly #target: ClusterTarget;
  readonly #size: number;
  readonly #retries: number;
  readonly #id = randomBytes(6).toString("hex");
  readonly #keys: ReturnType<typeof keys>;
  #state: EngineState = "running";
  #next = 0;
  #waiting: Entry[] = [];
  readonly #inflight = new Map<string, Sent>();
  /** Entries in flight (a "calls" job holds several). */
  #inflightCount = 0;
  /** How many jobs the worker commands serving the queue run at once, as their last heartbeats said. */
  #slots = 0;
  readonly #entries = new Map<Job, Entry>();
  readonly #refs = new Map<Function, WireRef>();
  #conn: Connected | undefined;
  #clients: import("ioredis").Redis[] = [];
  readonly #connecting: Promise<void>;
  #failure: Error | undefined;
  #timer: NodeJS.Timeout | undefined;
  #downSince: number | undefined;
  #noWorkersSince: number | undefined;
  #completed = 0;
  /** The worker commands serving the queue, as the last heartbeat read saw them. */
  #workers: WorkerStats[] = [];
  #failed = 0;
  #pumping = false;
  /** The `seq` of the last job the periodic check read: the next check goes on after it. */
  #reconciled = -1;
  #stopped: Promise<void> | undefined;
  #resolveJoined!: () => void;
  readonly #joined = new Promise<void>((resolve) => (this.#resolveJoined = resolve));

  constructor(options: EngineOptions) {
    const given = options.cluster ?? process.env[CLUSTER_ENV];
    this.#target = clusterTarget(given, options.cluster === undefined ? CLUSTER_ENV : "options.cluster");
    if (options.initializer) {
      throw new TypeError(
        "options.initializer is not available on a cluster pool: its workers are shared by every pool on the queue. Do the setup inside the task (once per process, in a module-level variable).",
      );
    }
    this.#size = options.size;
    this.#retries = options.retries ?? 0;
    this.#keys = keys(this.#target.queue);
    // bounded: a server that goes away while BullMQ gets ready would keep it retrying for ever
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`not ready within brokerTimeout (${this.#target.brokerTimeout} ms)`)),
        this.#target.brokerTimeout,
      );
    });
    this.#connecting = Promise.race([this.#connect(), bound])
      .catch((error) => this.#break(connectError(this.#target, error)))
      .finally(() => clearTimeout(timer));
  }

  async #connect(): Promise<void> {
    const t = this.#target;
    const redis = await openRedis(t.connection, Math.min(t.brokerTimeout, 5000));
    this.#clients = [redis];
    const { Queue, QueueEvents } = await loadBullmq();
    await redis.set(this.#keys.pool(this.#id), "1", "PX", 5000);
    // read events from the last one now: none of this pool's can be missed before the reader starts
    const last = (await redis.xrevrange(`bull:${t.queue}:events`, "+", "-", "COUNT", 1)) as [string, string[]][];
    // connections of this engine's own, given to BullMQ, so that it can drop them itself when the server is gone
    const queueClient = redis.duplicate({ maxRetriesPerRequest: null });
    const eventsClient = redis.duplicate({ maxRetriesPerRequest: null });
    for (const client of [queueClient, eventsClient]) client.on("error", () => {});
    this.#clients.push(queueClient, eventsClient);
    const queue = new Queue(t.queue, { connection: queueClient });
    const events = new QueueEvents(t.queue, { connection: eventsClient, lastEventId: last[0]?.[0] ?? "0-0" });
    queue.on("error", () => {});
    events.on("error", () => {});
    const mine = (jobId: string) => jobId.startsWith(`${this.#id}-`);
    events.on("active", ({ jobId }) => {
      if (!mine(jobId)) return;
      const sent = this.#inflight.get(jobId);
      if (sent) sent.started = true;
    });
    events.on("completed", ({ jobId, returnvalue }) => {
      if (mine(jobId)) this.#finished(jobId, returnvalue as unknown);
    });
    events.on("failed", ({ jobId, failedReason }) => {
      if (mine(jobId)) this.#lost(jobId, failedReason);
    });
    redis.on("close", () => (this.#downSince ??= Date.now()));
    redis.on("ready", () => {
      this.#downSince = undefined;
      this.#reconcile(true);
      // calls submitted while the connection was down are still waiting: nothing else sends them
      this.#pump();
    });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), this.#readWorkers(redis)]);
    this.#conn = { redis, queue, events };
    if (this.#state === "terminated") return;
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#pump();
  }

  get state(): EngineState {
    return this.#state;
  }

  prepare(fn: Function): void {
    this.#ref(fn);
  }

  #ref(fn: Function): WireRef {
    let ref = this.#refs.get(fn);
    if (!ref) this.#refs.set(fn, (ref = taskRef(fn)));
    return ref;
  }

  encodeArgs(args: unknown[], path: string): { value: unknown; changed: boolean } {
    return { value: encodeRemote(args, path), changed: true };
  }

  submit(job: Job): void {
    if (this.#state !== "running") {
      throw this.#failure ?? new ProcessError(`the cluster pool is ${this.#state}: it accepts no more work`);
    }
    this.#ref(job.fn);
    job.encoded ??= this.encodeArgs(job.args, job.mode === "call" ? "args" : "items");
    const entry: Entry = { job, sent: undefined };
    this.#entries.set(job, entry);
    this.#waiting.push(entry);
    this.#pump();
  }

  /** Sends waiting entries while fewer than `size` are in flight. */
  #pump(): void {
    const conn = this.#conn;
    if (!conn || this.#pumping || this.#downSince !== undefined) return;
    let n = Math.min(this.#waiting.length, this.#size - this.#inflightCount);
    if (n <= 0) return;
    const perJob = this.#callsPerJob(n);
    const batch: Sent[] = [];
    while (n > 0) {
      const entries = [this.#waiting.shift()!];
      n--;
      const { fn, mode } = entries[0]!.job;
      if (perJob > 1 && groupable(entries[0]!.job)) {
        while (
          n > 0 &&
          entries.length < perJob &&
          this.#waiting[0]!.job.fn === fn &&
          this.#waiting[0]!.job.mode === mode &&
          groupable(this.#waiting[0]!.job)
        ) {
          entries.push(this.#waiting.shift()!);
          n--;
        }
      }
      const seq = this.#next++;
      const sent: Sent = {
        id: `${this.#id}-${seq}`,
        seq,
        entries,
        started: false,
        sentAt: Date.now(),
      };
      for (const entry of entries) entry.sent = sent;
      this.#inflight.set(sent.id, sent);
      this.#inflightCount += entries.length;
      batch.push(sent);
    }
    const age = Math.max(60, Math.ceil((3 * this.#target.brokerTimeout) / 1000));
    const jobs = batch.map((sent) => {
      const { job } = sent.entries[0]!;
      const head = { v: 1 as const, pool: this.#id, fn: this.#ref(job.fn) };
      const calls = sent.entries.map((entry) => wireArgs(entry.job));
      const data: WireJob =
        calls.length === 1
          ? { ...head, mode: job.mode, ...calls[0]! }
          : job.mode === "call"
            ? { ...head, mode: "calls", calls }
            : { ...head, mode: "chunks", each: job.mode, calls };
      return {
        name: job.fn.name || "task",
        data,
        opts: { jobId: sent.id, attempts: 1, removeOnComplete: { age }, removeOnFail: { age } },
      };
    });
    this.#pumping = true;
    conn.queue
      .addBulk(jobs)
      .catch(() => {
        // the connection is down: the jobs are sent again once it is back (#reconcile)
        for (const sent of batch) if (this.#inflight.get(sent.id) === sent) sent.sentAt = -1;
      })
      .finally(() => {
        this.#pumping = false;
        this.#pump();
      });
  }

  /**
   * How many calls one job carries when `n` entries are to be sent: one, unless the pool is
   * backlogged; then as many as spread them over eight jobs for every slot of the workers serving
   * the queue (map sizes its chunks the same way), at most MAX_CALLS_PER_JOB.
   */
  #callsPerJob(n: number): number {
    if (this.#slots === 0) return 1;
    return Math.max(1, Math.min(MAX_CALLS_PER_JOB, Math.floor(n / (8 * this.#slots))));
  }

  /** Takes `sent` out of flight: the entries still waiting for it, by their place in it. */
  #land(sent: Sent): (Entry | undefined)[] {
    this.#inflight.delete(sent.id);
    return sent.entries.map((entry) => {
      if (entry.sent !== sent) return undefined;
      entry.sent = undefined;
      this.#inflightCount--;
      return entry;
    });
  }

  #finished(jobId: string, returnvalue: unknown): void {
    const sent = this.#inflight.get(jobId);
    if (!sent) return;
    const result = (typeof returnvalue === "string" ? JSON.parse(returnvalue) : returnvalue) as
      | WireResult
      | WireResults
      | null;
    if (!result || typeof result !== "object" || !("ok" in result)) return;
    // a "calls" or "chunks" job returns an outcome for each; a single error is every one's (its local child crashed)
    const outcomes = "calls" in result ? result.calls : undefined;
    this.#land(sent).forEach((entry, i) => {
      if (!entry) return;
      readResult(outcomes?.[i] ?? (result as WireResult)).then(
        (outcome) => this.#settle(entry, outcome),
        (error) => this.#settle(entry, { ok: false, error }),
      );
    });
  }

  #lost(jobId: string, reason: string): void {
    const sent = this.#inflight.get(jobId);
    if (!sent) return;
    const error = STALLED.test(reason)
      ? new WorkerLostError(
          "the worker running this task was lost twice (its process or machine died, or it stopped renewing the job's lock): the task ran again once after the first loss and is not tried again",
        )
      : new ProcessError(`the cluster job failed: ${reason}`);
    for (const entry of this.#land(sent)) if (entry) this.#settle(entry, { ok: false, error });
  }

  #settle(entry: Entry, outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void {
    if (this.#entries.get(entry.job) !== entry) return;
    const { job } = entry;
    if (!outcome.ok && (job.retried ?? 0) < this.#retries && this.#state === "running") {
      job.retried = (job.retried ?? 0) + 1;
      this.#waiting.push(entry);
      this.#pump();
      return;
    }
    this.#entries.delete(job);
    if (outcome.ok) this.#completed++;
    else this.#failed++;
    this.#pump();
    if (!job.cancelled) job.settle(outcome);
    this.#maybeStop();
  }

  /**
   * Reads the outcome of in-flight jobs from their hashes: an event missed while disconnected, or
   * trimmed. `all` after a reconnect; otherwise RECONCILE_BATCH of them, going on after the last
   * one read, and round again from the oldest.
   */
  #reconcile(all = false): void {
    const conn = this.#conn;
    if (!conn || this.#inflight.size === 0) return;
    const now = Date.now();
    const due = (e: Sent) => e.sentAt < 0 || now - e.sentAt > 1000;
    let entries: Sent[] = [];
    if (all) {
      for (const e of this.#inflight.values()) if (due(e)) entries.push(e);
    } else {
      // the map holds jobs in the order they were sent, which is the order of `seq`
      const wrapped: Sent[] = [];
      for (const e of this.#inflight.values()) {
        if (!due(e)) continue;
        if (e.seq > this.#reconciled) {
          entries.push(e);
          if (entries.length === RECONCILE_BATCH) break;
        } else if (wrapped.length < RECONCILE_BATCH) wrapped.push(e);
      }
      entries = entries.concat(wrapped).slice(0, RECONCILE_BATCH);
      this.#reconciled = entries.at(-1)?.seq ?? -1;
    }
    if (entries.length === 0) return;
    const multi = conn.redis.multi();
    for (const e of entries)
      multi.hmget(`bull:${this.#target.queue}:${e.id}`, "returnvalue", "failedReason", "finishedOn");
    multi
      .exec()
      .then((replies) => {
        const resend: Entry[] = [];
        replies?.forEach(([error, reply], i) => {
          const sent = entries[i]!;
          if (error || this.#inflight.get(sent.id) !== sent) return;
          const [returnvalue, failedReason, finishedOn] = reply as (string | null)[];
          if (finishedOn && returnvalue) this.#finished(sent.id, returnvalue);
          else if (finishedOn && failedReason) this.#lost(sent.id, failedReason);
          else if (finishedOn === null && returnvalue === null && failedReason === null && sent.sentAt < 0)
            for (const entry of this.#land(sent)) if (entry) resend.push(entry);
        });
        // ahead of the rest, in the order they were sent (a concat: a reconnect may resend thousands)
        this.#waiting = resend.concat(this.#waiting);
        this.#pump();
      })
      .catch(() => {});
  }

  #tick(): void {
    const conn = this.#conn!;
    const now = Date.now();
    if (this.#downSince !== undefined) {
      if (now - this.#downSince > this.#target.brokerTimeout) {
        this.#break(
          new BrokerLostError(
            `the connection to the Redis server at ${this.#target.display} was lost for more than brokerTimeout (${this.#target.brokerTimeout} ms)`,
          ),
        );
      }
      return;
    }
    conn.redis.set(this.#keys.pool(this.#id), "1", "PX", 5000).catch(() => {});
    this.#reconcile();
    if (this.#entries.size === 0) this.#noWorkersSince = undefined;
    this.#readWorkers(conn.redis)
      .then((count) => {
        if (this.#entries.size === 0) return;
        if (count > 0) {
          this.#noWorkersSince = undefined;
          return;
        }
        this.#noWorkersSince ??= now;
        if (Date.now() - this.#noWorkersSince < this.#target.workerWaitTimeout) return;
        this.#noWorkersSince = undefined;
        const error = new NoWorkersError(
          `no cluster worker is serving the queue "${this.#target.queue}" at ${this.#target.display} (waited ${this.#target.workerWaitTimeout} ms): ` +
            `start one with npx multiprocessing-ts worker --connect ${this.#target.display}${this.#target.queue === "mp" ? "" : ` --queue ${this.#target.queue}`}`,
        );
        for (const entry of [...this.#entries.values()]) {
          if (!entry.sent?.started) {
            this.#drop(entry, false);
            this.#failed++;
            if (!entry.job.cancelled) entry.job.settle({ ok: false, error });
          }
        }
        this.#maybeStop();
      })
      .catch(() => {});
  }

  /**
   * Reads the worker commands whose heartbeat is live, and what each said of itself with it, into
   * `stats().workers`; resolves to how many there are.
   */
  async #readWorkers(redis: import("ioredis").Redis): Promise<number> {
    const ids = await redis.zrangebyscore(this.#keys.workers, Date.now(), "+inf");
    const infos = ids.length > 0 ? await redis.mget(ids.map((id) => this.#keys.worker(id))) : [];
    const workers: WorkerStats[] = [];
    let slots = 0;
    ids.forEach((name, i) => {
      const text = infos[i];
      if (!text) return; // its heartbeat is being written, or it is a worker of an older version
      const info = JSON.parse(text) as WorkerInfo;
      workers.push({ name, pid: info.pid, host: info.host, state: info.state, completed: info.completed });
      slots += info.slots ?? 2;
    });
    this.#workers = workers;
    this.#slots = slots;
    return ids.length;
  }

  /**
   * Forgets an entry; removes its job from the queue, or stops it on its worker with `interrupt`,
   * once no other entry of the job waits for it.
   */
  #drop(entry: Entry, interrupt: boolean): void {
    this.#entries.delete(entry.job);
    const i = this.#waiting.indexOf(entry);
    if (i >= 0) this.#waiting.splice(i, 1);
    const sent = entry.sent;
    if (sent === undefined) return;
    entry.sent = undefined;
    this.#inflightCount--;
    if (sent.entries.some((other) => other.sent === sent)) return;
    this.#inflight.delete(sent.id);
    const conn = this.#conn;
    if (!conn) return;
    if (sent.started) {
      if (interrupt) conn.redis.publish(this.#keys.cancel, sent.id).catch(() => {});
    } else {
      const { id } = sent;
      conn.queue.remove(id).then(
        (removed) => {
          // taken by a worker meanwhile: stop it there
          if (!removed && interrupt) conn.redis.publish(this.#keys.cancel, id).catch(() => {});
        },
        () => {},
      );
    }
    this.#pump();
  }

  cancel(job: Job, interrupt = false): void {
    job.cancelled = true;
    const entry = this.#entries.get(job);
    if (entry) this.#drop(entry, interrupt);
    this.#maybeStop();
  }

  withdraw(job: Job): boolean {
    const entry = this.#entries.get(job);
    // sent with other calls, it runs with them (as a call Python's executor already queued for a worker)
    if (!entry || entry.sent?.started || (entry.sent?.entries.length ?? 0) > 1) return false;
    this.cancel(job, true);
    return true;
  }

  started(job: Job): boolean {
    return this.#entries.get(job)?.sent?.started ?? false;
  }

  assigned(job: Job): boolean {
    return this.started(job);
  }

  close(): void {
    if (this.#state === "running") this.#state = "closing";
    this.#maybeStop();
  }

  terminate(reason: Error): void {
    if (this.#state === "terminated") return;
    const wasBroken = this.#state === "broken";
    this.#state = "terminated";
    for (const entry of [...this.#entries.values()]) {
      this.#drop(entry, true);
      if (!wasBroken && !entry.job.cancelled) entry.job.settle({ ok: false, error: reason });
    }
    this.#stop();
  }

  #break(error: Error): void {
    if (this.#state === "terminated" || this.#state === "broken") return;
    this.#failure = error;
    this.#state = "broken";
    for (const entry of [...this.#entries.values()]) {
      this.#entries.delete(entry.job);
      if (!entry.job.cancelled) entry.job.settle({ ok: false, error });
    }
    this.#waiting.length = 0;
    this.#inflight.clear();
    this.#inflightCount = 0;
    this.#stop();
  }

  #maybeStop(): void {
    if (this.#state === "closing" && this.#entries.size === 0) this.#stop();
  }

  /** Disconnects; after terminate() a last round removes what is left of this pool's jobs. */
  #stop(): void {
    this.#stopped ??= (async () => {
      if (this.#state === "closing") this.#state = "terminated";
      await this.#connecting;
      clearInterval(this.#timer);
      const conn = this.#conn;
      if (!conn) {
        // the connection failed half way: nothing but the clients opened so far to drop
        for (const client of this.#clients) client.disconnect();
        return;
      }
      if (this.#downSince === undefined) {
        await conn.redis.del(this.#keys.pool(this.#id)).catch(() => {});
        await Promise.allSettled([conn.events.close(), conn.queue.close()]);
      } else {
        // the server is gone: a graceful close would wait for it for ever; the heartbeat key expires by itself
        for (const client of this.#clients) client.disconnect();
        conn.events.close().catch(() => {});
        conn.queue.close().catch(() => {});
      }
      for (const client of this.#clients) client.disconnect();
    })();
    this.#stopped.then(this.#resolveJoined);
  }

  detach(): void {
    this.close();
  }

  join(): Promise<void> {
    return this.#joined;
  }

  /**
   * `map`'s chunks on a cluster. Every job costs a broker round trip (~0.2–0.3 ms: the job's hash,
   * the queue, the worker's lock, the completed event), so: about four chunks per job in flight, as
   * locally, for balance; but at least 256 items a chunk (a round trip is then ~1 µs an item) unless
   * that leaves fewer chunks than jobs in flight; and at most 4 096 items (each job's payload stays
   * small in Redis, and encoding, the broker and the workers overlap on a long list).
   */
  defaultChunksize(length: number): number {
    const balanced = Math.ceil(length / (4 * this.#size));
    const floor = Math.min(256, Math.ceil(length / this.#size));
    return Math.max(1, Math.min(4096, Math.max(balanced, floor)));
  }

  stats(): PoolStats {
    let running = 0;
    for (const sent of this.#inflight.values()) {
      if (sent.started) for (const entry of sent.entries) if (entry.sent === sent) running++;
    }
    return {
      queued: this.#entries.size - running,
      running,
      completed: this.#completed,
      failed: this.#failed,
      utilization: 0,
      workers: this.#workers,
    };
  }
}

/**
 * Whether a job may share a BullMQ job with others (of the same function and mode): a call or
 * chunk that no signal or timeout may interrupt alone.
 */
function groupable(job: Job): boolean {
  return !job.interruptible;
}

/** A job's arguments as `encodeArgs` encoded them at submit time. */
function wireArgs(job: Job): WireArgs {
  const { data, changed } = job.encoded!.value as { data: string; changed: boolean };
  return { args: data, changed };
}
