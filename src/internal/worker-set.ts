/**
 * The engine under `Pool` and `ProcessPoolExecutor`: a set of pool workers, a queue of jobs, and
 * the bookkeeping that makes a crash cost exactly the job that was running.
 *
 *   submit(job) ─► queue ─► dispatch ─► worker.inflight (≤ depth) ─► "done"/"failed" ─► job.settle
 *                                   worker exits ─► inflight[0] fails with WorkerCrashedError,
 *                                                   the rest go back to the queue's front,
 *                                                   a replacement worker starts
 *
 * A worker runs its jobs one at a time, in the order sent, so the first unanswered job of a dead
 * worker is the one it was running. Jobs are prefetched (sent before the worker is free) only
 * while tasks are short: a long task would otherwise hold back the jobs queued behind it, which
 * another worker could have run.
 */
import type { RunningChild } from "../backends/backend.js";
import { BootstrapError, BrokenProcessPool, ProcessError, WorkerCrashedError } from "../errors.js";
import { type CodeRef, codeRef } from "../reduction.js";
import { decode, decodeOrImport, encode } from "./codec.js";
import { Deque } from "./deque.js";
import { trace } from "./debug.js";
import { backendFor } from "./methods.js";
import { stopOnInterrupt } from "./interrupt.js";
import { type StartMethod, runtime } from "./runtime.js";
import type { ToParent } from "./wire.js";

/** One unit of work for one worker. */
export interface Job {
  fn: Function;
  mode: "call" | "map" | "star";
  /** Arguments: for "call" the argument list, else the chunk of items. */
  args: unknown[];
  /** Called once with the outcome. */
  settle(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void;
  /** Called when a worker starts running the job (best effort: when it is sent). */
  onSent?(): void;
  /** Set by `cancel()`: the job is dropped if queued and its outcome ignored if running. */
  cancelled?: boolean;
  /** The arguments already encoded at submit time (so errors surface there). */
  encoded?: { value: unknown; changed: boolean };
  /** How many times the job was lost with a crashed worker and run again. */
  retried?: number;
}

/** Options of the engine. */
export interface WorkerSetOptions {
  method: StartMethod;
  size: number;
  initializer: Function | undefined;
  initargs: unknown[];
  maxTasksPerChild: number;
  /** Run a job again, up to this many times, when the worker running it crashes (default 0). */
  retries?: number;
  /** Heap limit of each worker, in MiB. */
  maxHeapMb?: number;
  /** Start all workers at once (Pool) or as work arrives (executor). */
  eager: boolean;
  /** Name prefix, e.g. "PoolWorker". */
  name: string;
}

interface Worker {
  child: RunningChild;
  ready: boolean;
  inflight: Job[];
  ids: number[];
  defined: Set<number>;
  exited: boolean;
  /** Jobs sent so far (a worker with maxTasksPerChild gets no more than it will run). */
  sent: number;
  /** What a dying worker said about its death (see wire.Crash). */
  crash: { running: number | null; error: unknown } | undefined;
  stopping: boolean;
  /** Set when the set was terminated while this worker was starting. */
  killWhenReady?: boolean;
}

type State = "running" | "closing" | "terminated" | "broken";

/** The engine: workers, a job queue, dispatch, crash recovery. */
export class WorkerSet {
  readonly #options: WorkerSetOptions;
  readonly #backend;
  readonly #workers = new Set<Worker>();
  readonly #queue = new Deque<Job>();
  readonly #fnIds = new Map<Function, { id: number; ref: CodeRef }>();
  #initializer: CodeRef | undefined;
  #initargs: { value: unknown; changed: boolean };
  #nextJob = 1;
  #state: State = "running";
  /** Whether a worker of this set has ever finished starting. */
  #started = false;
  #brokenBy: Error | undefined;
  #serviceMs = Number.NaN;
  #counter = 0;
  #allExited: Promise<void> | undefined;
  #resolveAllExited: (() => void) | undefined;
  #referenced = false;
  #untrack: () => void;

  constructor(options: WorkerSetOptions) {
    this.#options = options;
    this.#backend = backendFor(options.method);
    this.#initializer = options.initializer ? codeRef(options.initializer, "options.initializer") : undefined;
    this.#initargs = encode(options.initargs, this.#backend.transport, "options.initargs");
    this.#untrack = stopOnInterrupt({ interrupt: (reason) => this.terminate(reason) });
    if (options.eager) for (let i = 0; i < options.size; i++) this.#spawn();
  }

  get size(): number {
    return this.#options.size;
  }

  get state(): State {
    return this.#state;
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Jobs sent to workers and not answered yet. */
  get inflight(): number {
    let n = 0;
    for (const w of this.#workers) n += w.inflight.length;
    return n;
  }

  /** The OS pids (or the process pid, for threads) of the live workers. */
  get pids(): number[] {
    return [...this.#workers].filter((w) => !w.exited).map((w) => w.child.pid);
  }

  /** Checks that `fn` can be sent, at submit time (throws at once otherwise). */
  prepare(fn: Function, what: string): void {
    if (!this.#fnIds.has(fn)) this.#fnIds.set(fn, { id: this.#fnIds.size + 1, ref: codeRef(fn, what) });
  }

  /** Encodes the arguments now, so a SerializationError reaches the caller at submit time. */
  encodeArgs(args: unknown[], path: string): { value: unknown; changed: boolean } {
    return encode(args, this.#backend.transport, path);
  }

  /** Queues a job. Throws when the set no longer accepts work. */
  submit(job: Job): void {
    this.#checkAccepting();
    this.prepare(job.fn, "the task function");
    this.#queue.push(job);
    this.#dispatch();
    this.#updateRef();
  }

  #checkAccepting(): void {
    if (this.#state === "broken") {
      throw new BrokenProcessPool(`the pool is broken and cannot run new work: ${this.#brokenBy?.message}`, {
        cause: this.#brokenBy,
      });
    }
    if (this.#state !== "running") throw new ProcessError("the pool is not running (it was closed or terminated)");
  }

  /**
   * Gives up on a job: a queued job is dropped; the outcome of a sent one is ignored. With
   * `interrupt`, a running job has its worker stopped and replaced (JavaScript cannot interrupt a
   * running function otherwise): for a user's abort or timeout, not for a call that already failed.
   */
  cancel(job: Job, interrupt = false): void {
    if (job.cancelled) return;
    job.cancelled = true;
    // a queued job stays in the queue, marked, and is skipped when its turn comes
    if (!interrupt) return;
    for (const w of this.#workers) {
      if (w.inflight[0] === job) {
        w.inflight.shift();
        w.ids.shift();
        w.stopping = true; // no new work for a worker about to die
        w.child.kill();
        return;
      }
    }
  }

  /** Stops accepting work; workers exit once the queue is drained. */
  close(): void {
    if (this.#state !== "running") return;
    this.#state = "closing";
    if (this.#workers.size === 0) this.#untrack();
    this.#maybeStopIdle();
    this.#updateRef();
  }

  /** Kills every worker now; queued and running jobs reject with `reason`. */
  terminate(reason: Error): void {
    if (this.#state === "terminated") return;
    this.#state = "terminated";
    this.#untrack();
    this.#failAll(reason);
    for (const w of this.#workers) this.#kill(w);
    this.#updateRef();
  }

  /**
   * Kills a worker. A worker thread still loading its modules is killed once it is ready instead
   * (within a few seconds at most): Node leaks the file descriptors of module files a thread was
   * reading when it is terminated.
   */
  #kill(worker: Worker): void {
    if (worker.ready || this.#options.method !== "thread") {
      worker.child.kill();
      return;
    }
    worker.killWhenReady = true;
    setTimeout(() => worker.child.kill(), 5000).unref();
  }

  /** Resolves when every worker has exited (after `close()` or `terminate()`). */
  join(): Promise<void> {
    if (this.#workers.size === 0) return Promise.resolve();
    this.#allExited ??= new Promise((resolve) => (this.#resolveAllExited = resolve));
    return this.#allExited;
  }

  #spawn(): void {
    trace(`starting a ${this.#options.method} worker`);
    const identity = {
      name: `${this.#options.name}-${++this.#counter}`,
      daemon: true,
      parent: { name: runtime.name, pid: process.pid },
      startMethod: runtime.startMethod,
    };
    const child = this.#backend.launch({
      maxHeapMb: this.#options.maxHeapMb,
      boot: {
        t: "pool",
        identity,
        initializer: this.#initializer,
        initargs: this.#initargs.value,
        h: this.#initargs.changed,
        maxTasks: this.#options.maxTasksPerChild,
      },
    });
    const worker: Worker = {
      child,
      ready: false,
      inflight: [],
      ids: [],
      defined: new Set(),
      exited: false,
      sent: 0,
      stopping: false,
      crash: undefined,
    };
    this.#workers.add(worker);
    if (!this.#referenced) child.unref();
    child.onMessage = (message) => this.#onMessage(worker, message);
    void child.exited.then((exit) => this.#onExit(worker, exit.exitcode, exit.signal, exit.outOfMemory === true));
  }

  #onMessage(worker: Worker, message: ToParent): void {
    switch (message.t) {
      case "ready":
        trace(`worker ${worker.child.pid} ready`);
        worker.ready = true;
        this.#started = true;
        if (worker.killWhenReady) {
          worker.child.kill();
          return;
        }
        this.#dispatch();
        return;
      case "done":
      case "failed": {
        const at = worker.ids.indexOf(message.id);
        if (at < 0) return;
        const [job] = worker.inflight.splice(at, 1);
        worker.ids.splice(at, 1);
        if (message.t === "done") {
          this.#serviceMs = Number.isNaN(this.#serviceMs) ? message.ms : this.#serviceMs * 0.8 + message.ms * 0.2;
          if (!job!.cancelled) {
            if (message.h) settleDecoded(job!, message.value, true);
            else job!.settle({ ok: true, value: message.value });
          }
        } else if (!job!.cancelled) settleDecoded(job!, message.error, false);
        this.#dispatch();
        this.#maybeStopIdle();
        this.#updateRef();
        return;
      }
      case "crash":
        worker.crash = { running: message.running, error: decode(message.error) };
        worker.stopping = true;
        return;
      case "fatal": {
        const error = decode(message.error) as Error;
        this.#break(
          error instanceof BootstrapError || error?.name === "BootstrapError"
            ? error
            : new BrokenProcessPool(`a worker failed to start: ${error?.message ?? error}`, { cause: error }),
        );
        return;
      }
      default:
        return;
    }
  }

  #onExit(worker: Worker, exitcode: number, signal: string | null, outOfMemory: boolean): void {
    worker.exited = true;
    this.#workers.delete(worker);
    if (!worker.ready && !this.#started && (this.#state === "running" || this.#state === "closing")) {
      // No worker of this set ever started: replacing it would only fail again (a preload that
      // throws, a flag Node rejects), forever. Its jobs never ran.
      this.#queue.unshiftAll(worker.inflight.filter((job) => !job.cancelled));
      worker.inflight = [];
      const how = signal ? `was killed by ${signal}` : `exited with code ${exitcode}`;
      this.#break(
        new BrokenProcessPool(
          `a worker ${how} before it could start (its error output says why), and no worker of this pool has started`,
        ),
      );
    }
    // Jobs run one at a time in the order sent, so the first unanswered one was running, unless
    // the worker said it died between tasks.
    const crash = worker.crash;
    let running: Job | undefined;
    if (crash) {
      const at = crash.running === null ? -1 : worker.ids.indexOf(crash.running);
      if (at >= 0) running = worker.inflight.splice(at, 1)[0];
    } else running = worker.inflight.shift();
    const notStarted = worker.inflight;
    worker.inflight = [];
    const retry = running && !running.cancelled && (running.retried ?? 0) < (this.#options.retries ?? 0);
    if (retry) {
      running!.retried = (running!.retried ?? 0) + 1;
      trace(`retrying a job whose worker died (attempt ${running!.retried + 1})`);
      notStarted.unshift(running!);
    } else if (running && !running.cancelled && this.#state !== "terminated") {
      const how = outOfMemory
        ? `ran out of memory (its heap limit is ${this.#options.maxHeapMb ?? "the default"} MiB)`
        : signal
          ? `was killed by ${signal}`
          : crash
            ? `died from an error thrown outside any task (${(crash.error as Error)?.message}), exit code ${exitcode}`
            : `exited with code ${exitcode}`;
      running.settle({
        ok: false,
        error: new WorkerCrashedError(
          `the worker running this task ${how} before it finished (pid ${worker.child.pid}); the pool replaced it`,
          { exitCode: signal ? null : exitcode, signal },
        ),
      });
    }
    this.#queue.unshiftAll(notStarted.filter((job) => !job.cancelled));
    if (this.#state === "running" || (this.#state === "closing" && this.#queue.length > 0)) {
      if (this.#workers.size < this.#options.size && (this.#options.eager || this.#queue.length > 0)) this.#spawn();
      this.#dispatch();
    } else if (this.#state === "broken") {
      this.#failAll(this.#brokenBy!);
    }
    if (this.#workers.size === 0 && this.#state !== "running") {
      this.#untrack();
      this.#resolveAllExited?.();
    }
    this.#updateRef();
  }

  #break(error: Error): void {
    if (this.#state === "terminated" || this.#state === "broken") return;
    this.#state = "broken";
    this.#brokenBy = error;
    this.#failAll(error);
    for (const w of this.#workers) this.#kill(w);
    this.#updateRef();
  }

  #failAll(error: Error): void {
    const jobs = this.#queue.drain();
    for (const w of this.#workers) {
      jobs.push(...w.inflight);
      w.inflight = [];
      w.ids = [];
    }
    for (const job of jobs) if (!job.cancelled) job.settle({ ok: false, error });
  }

  /** How many jobs a worker may hold: 1 for long tasks, more while tasks are short. */
  #depth(): number {
    const ms = this.#serviceMs;
    if (Number.isNaN(ms) || ms > 2) return 1;
    if (ms > 0.2) return 4;
    return 32;
  }

  #dispatch(): void {
    if (this.#state !== "running" && this.#state !== "closing") return;
    while (this.#queue.length) {
      const job = this.#queue.peek()!;
      if (job.cancelled) {
        this.#queue.shift();
        continue;
      }
      const worker = this.#pickWorker();
      if (!worker) break;
      this.#queue.shift();
      this.#send(worker, job);
    }
    this.#maybeStopIdle();
  }

  #pickWorker(): Worker | undefined {
    // A starting worker takes jobs too (its child queues them until its initializer is done), so a
    // submitted call is assigned, and counts as running, at once, as in Python's call queue.
    // Prefetch, but never more than a fair share of the outstanding work: a worker that happens to be
    // ready first must not take the jobs another (still starting) worker would run in parallel.
    const fairShare = Math.ceil((this.#queue.length + this.inflight) / Math.max(1, this.#workers.size));
    const depth = Math.min(this.#depth(), Math.max(1, fairShare));
    let best: Worker | undefined;
    for (const w of this.#workers) {
      if (w.exited || w.stopping) continue;
      if (w.inflight.length >= (w.ready ? depth : 1)) continue;
      if (this.#options.maxTasksPerChild > 0 && w.sent >= this.#options.maxTasksPerChild) continue;
      if (!best || w.inflight.length < best.inflight.length) best = w;
      if (best.inflight.length === 0) break;
    }
    if ((!best || best.inflight.length > 0) && this.#workers.size < this.#options.size) {
      // executor: start workers on demand, reusing idle ones first
      this.#spawn();
      return this.#pickWorker();
    }
    return best;
  }

  #send(worker: Worker, job: Job): void {
    trace(`job to worker ${worker.child.pid}`);
    const entry = this.#fnIds.get(job.fn)!;
    if (!worker.defined.has(entry.id)) {
      worker.child.send({ t: "define", id: entry.id, ref: entry.ref });
      worker.defined.add(entry.id);
    }
    const id = this.#nextJob++;
    const args = job.encoded ?? encode(job.args, this.#backend.transport, "args");
    worker.inflight.push(job);
    worker.ids.push(id);
    worker.sent++;
    worker.child.send({ t: "task", id, fn: entry.id, mode: job.mode, args: args.value, h: args.changed });
    job.onSent?.();
  }

  /**
   * While work is queued or running, the workers keep the program alive until the results arrive;
   * an idle pool does not hold the program open (as Python's daemonic pool workers do not).
   */
  #updateRef(): void {
    // a closing or terminated set is waited for until its workers have exited
    const busy = this.#queue.length > 0 || this.inflight > 0 || this.#state !== "running";
    if (busy === this.#referenced) return;
    this.#referenced = busy;
    for (const w of this.#workers) busy ? w.child.ref() : w.child.unref();
  }

  #maybeStopIdle(): void {
    if (this.#state !== "closing" || this.#queue.length > 0) return;
    for (const w of this.#workers) {
      if (w.inflight.length === 0 && !w.exited && !w.stopping) {
        w.stopping = true;
        w.child.send({ t: "stop" });
      }
    }
  }
}

/**
 * Settles `job` with a decoded result (`ok`) or error: at once, or once the modules of the exported
 * classes and functions it names are imported here.
 */
function settleDecoded(job: Job, encoded: unknown, ok: boolean): void {
  const value = decodeOrImport(encoded);
  if (value instanceof Promise) {
    value.then(
      (v) => job.settle(ok ? { ok: true, value: v } : { ok: false, error: v }),
      (error) => job.settle({ ok: false, error }),
    );
  } else job.settle(ok ? { ok: true, value } : { ok: false, error: value });
}
