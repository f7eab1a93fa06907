/**
 * The engine under `Pool` and `ProcessPoolExecutor`: a set of pool workers, a queue of jobs, and
 * the bookkeeping that makes a crash cost exactly the job that was running.
 *
 *   submit(job) ─► queue ─► dispatch ─► worker.inflight (≤ depth) ─► "done"/"failed" ─► job.settle
 *                              ▲                  │ a worker free and nothing queued:
 *                              └── taken back ◄───┘ jobs not started yet come back
 *                                   worker exits ─► the job it was running fails with
 *                                                   WorkerCrashedError, the ones it had not started
 *                                                   go back to the queue's front, a replacement starts
 *
 * A worker runs its jobs one at a time, in the order sent. Each worker has a claim cell (claims.ts)
 * that says which of its jobs have started, and through which the set takes back the ones it has
 * not started. So jobs can be prefetched (sent before the worker is
 * free, which saves a round trip per short task) without delaying anyone: a job waiting behind a
 * long one moves to the first worker that becomes free, and a future is "running" only once its
 * worker has claimed it. Without shared memory (the spawn method without the native addon) nothing
 * is prefetched, and a job sent counts as running, as in Python's call queue. What a worker's exit
 * means for the jobs it was sent (which one was running, and the errors that say why) is
 * worker-exit.ts.
 */
import type { Backend, RunningChild } from "./backend.js";
import { BootstrapError, BrokenProcessPool, ProcessError } from "../../errors.js";
import { type CodeRef, codeRef } from "../reduction.js";
import { decode, decodeOrImport, encode } from "../wire/codec.js";
import { Deque } from "../deque.js";
import { trace } from "../debug.js";
import { stopOnInterrupt } from "../interrupt.js";
import type { EngineOptions, Job, PoolEngine, PoolStats, WorkerStats } from "./engine.js";
import { type PoolChild, poolChildren } from "./pool-children.js";
import { runtime } from "../runtime.js";
import { type ToParent, assertNever } from "../wire/messages.js";
import { ClaimCells } from "./claims.js";
import { depthFor, mayTake, pickWorker } from "./scheduling.js";
import { type Crash, crashedWhileRunning, neverStarted, runningAtExit } from "./worker-exit.js";

/** Options of the engine: what Pool and Executor ask for, and the backend that launches its workers. */
export interface WorkerSetOptions extends EngineOptions {
  backend: Backend;
}

interface Worker {
  child: RunningChild;
  /** Its entry in the process's list of pool workers (its name, for activeChildren()). */
  entry: PoolChild;
  ready: boolean;
  inflight: Job[];
  ids: number[];
  defined: Set<number>;
  exited: boolean;
  /** Jobs sent so far (a worker with maxTasksPerChild gets no more than it will run). */
  sent: number;
  /** What a dying worker said about its death (see Crash in wire/messages.ts). */
  crash: Crash | undefined;
  stopping: boolean;
  /** Set when the set stopped this worker itself (a cancelled call): its exit is no failure. */
  killed: boolean;
  /** Its claim cell's index, or -1 without claim cells. */
  slot: number;
  /** The id of the last task sent to it (ids count 1, 2, 3… per worker, wrapping as Int32). */
  seq: number;
  /** Tasks it answered. */
  completed: number;
  /** Since when it holds a started task (it is ready and has one), for utilization; else undefined. */
  busySince: number | undefined;
}

type State = PoolEngine["state"];

/** The engine of the local start methods: workers, a job queue, dispatch, crash recovery. */
export class WorkerSet implements PoolEngine {
  readonly #options: WorkerSetOptions;
  readonly #backend: Backend;
  readonly #workers = new Set<Worker>();
  readonly #queue = new Deque<Job>();
  readonly #fnIds = new Map<Function, { id: number; ref: CodeRef }>();
  #initializer: CodeRef | undefined;
  #initargs: { value: unknown; changed: boolean };
  /** The claim cells; null where there is no shared memory, undefined until the first worker starts. */
  #claims: ClaimCells | null | undefined;
  #dispatchQueued = false;
  #refillQueued = false;
  /** The workers sent a job in the current `#assign`: they take up to `depth` now. */
  readonly #refilled = new Set<Worker>();
  #state: State = "running";
  /** Whether a worker of this set has ever finished starting. */
  #started = false;
  #brokenBy: Error | undefined;
  #serviceMs = Number.NaN;
  #counter = 0;
  #allExited: Promise<void> | undefined;
  #resolveAllExited: (() => void) | undefined;
  #referenced = false;
  #detached = false;
  #untrack: () => void;
  readonly #createdAt = performance.now();
  /** Worker-time spent holding started tasks, in ms, over the intervals that have ended. */
  #busyMs = 0;
  #completed = 0;
  #failed = 0;

  constructor(options: WorkerSetOptions) {
    this.#options = options;
    this.#backend = options.backend;
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

  /** Jobs sent to workers and not answered yet. */
  get #inflight(): number {
    let n = 0;
    for (const w of this.#workers) n += w.inflight.length;
    return n;
  }

  /**
   * A snapshot (see PoolStats). A job sent ahead to a worker counts as queued until the worker
   * claims it; without claim cells every job sent counts as running, as `started()` says.
   */
  stats(): PoolStats {
    const now = performance.now();
    let queued = 0;
    for (const job of this.#queue) if (!job.cancelled) queued++;
    let running = 0;
    let busy = this.#busyMs;
    const workers: WorkerStats[] = [];
    for (const w of this.#workers) {
      // jobs run in the order sent: the started ones come first
      let started = 0;
      while (started < w.inflight.length && this.#hasStarted(w, started)) started++;
      running += started;
      for (let i = started; i < w.inflight.length; i++) if (!w.inflight[i]!.cancelled) queued++;
      if (w.busySince !== undefined) busy += now - w.busySince;
      const state = w.stopping || w.killed ? "stopping" : !w.ready ? "starting" : w.inflight.length ? "busy" : "idle";
      workers.push({ name: w.entry.name, pid: w.child.pid, state, completed: w.completed });
    }
    const capacity = this.#options.size * (now - this.#createdAt);
    return {
      queued,
      running,
      completed: this.#completed,
      failed: this.#failed,
      utilization: capacity > 0 ? Math.min(1, busy / capacity) : 0,
      workers,
    };
  }

  /** Opens or closes the worker's busy interval: it is busy while it is ready and holds a task. */
  #account(w: Worker): void {
    const busy = w.ready && !w.exited && w.inflight.length > 0;
    if (busy && w.busySince === undefined) w.busySince = performance.now();
    else if (!busy && w.busySince !== undefined) {
      this.#busyMs += performance.now() - w.busySince;
      w.busySince = undefined;
    }
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
   * Gives up on a job: a queued job is dropped, and so is a sent one its worker has not started;
   * the outcome of a running one is ignored. With `interrupt`, a running job has its worker
   * stopped and replaced (JavaScript cannot interrupt a running function otherwise): for a user's
   * abort or timeout, not for a call that already failed.
   */
  cancel(job: Job, interrupt = false): void {
    if (job.cancelled) return;
    job.cancelled = true;
    // a queued job stays in the queue, marked, and is skipped when its turn comes
    const held = this.#holder(job);
    if (!held) return;
    const { worker, at } = held;
    if (!this.#hasStarted(worker, at)) {
      this.#takeBack(worker);
      this.#dispatchSoon();
      return;
    }
    if (!interrupt || at !== 0) return;
    worker.inflight.shift();
    worker.ids.shift();
    this.#account(worker);
    worker.stopping = true; // no new work for a worker about to die
    worker.killed = true;
    worker.child.kill();
  }

  /**
   * Cancels a job only if no worker has started it (Python's `Future.cancel`): true if it will
   * never run, false if it is running or done (it is then left alone).
   */
  withdraw(job: Job): boolean {
    if (job.cancelled) return true;
    if (this.started(job)) return false;
    this.cancel(job);
    return true;
  }

  /** True once a worker has started the job and not answered yet (its claim, or its send). */
  started(job: Job): boolean {
    const held = this.#holder(job);
    return held !== undefined && this.#hasStarted(held.worker, held.at);
  }

  /**
   * True when the job is the one its worker runs now or next (sent ahead behind another, it is not:
   * a worker's next job is what Python's call queue holds for it).
   */
  assigned(job: Job): boolean {
    return this.#holder(job)?.at === 0;
  }

  /** The worker a job was sent to, and where it is in that worker's list (on demand only: a scan). */
  #holder(job: Job): { worker: Worker; at: number } | undefined {
    for (const worker of this.#workers) {
      const at = worker.inflight.indexOf(job);
      if (at >= 0) return { worker, at };
    }
    return undefined;
  }

  /** Whether the worker has started its job at `at` (without a claim cell: every job sent counts). */
  #hasStarted(worker: Worker, at: number): boolean {
    return worker.slot < 0 || this.#claims!.hasStarted(worker.slot, worker.ids[at]!);
  }

  /**
   * Takes back every job the worker has not started: moves its claim cell past them, so that it
   * skips them, and puts them back at the queue's front, in order. Returns how many came back.
   */
  #takeBack(worker: Worker): number {
    if (worker.slot < 0 || worker.exited) return 0;
    const unstarted = this.#claims!.takeBack(worker.slot, worker.seq, worker.inflight.length);
    if (unstarted === 0) return 0;
    const jobs = worker.inflight.splice(worker.inflight.length - unstarted);
    worker.ids.splice(worker.ids.length - unstarted);
    worker.sent -= unstarted;
    this.#account(worker);
    trace(`took back ${unstarted} job(s) from worker ${worker.child.pid}`);
    const live = jobs.filter((job) => !job.cancelled);
    this.#queue.unshiftAll(live);
    return live.length;
  }

  /** Dispatches once the current cancellations are done (a failed map cancels many jobs in a row). */
  #dispatchSoon(): void {
    if (this.#dispatchQueued) return;
    this.#dispatchQueued = true;
    queueMicrotask(() => {
      this.#dispatchQueued = false;
      this.#dispatch();
      this.#updateRef();
    });
  }

  /**
   * Sends queued jobs to the workers that answered, once every message that has arrived is handled.
   * Between threads, each result is a message of its own (a worker sends the results of earlier
   * tasks before it starts the next one, for its crash to be pinned on the right task), and
   * microtasks run between two messages: refilling on each result would post one message per job,
   * each waking a worker thread that has run dry. After the batch, the jobs for a worker leave in
   * one message, which is what lets a pool of short tasks keep up with a bare one. A worker left
   * with one job or none is refilled at once instead: handling the other results first (for map
   * chunks, a copy of each) would leave it idle meanwhile.
   */
  #refillSoon(): void {
    if (this.#refillQueued) return;
    this.#refillQueued = true;
    setImmediate(() => {
      this.#refillQueued = false;
      this.#dispatch();
      this.#updateRef();
    });
  }

  /** Stops accepting work; workers exit once the queue is drained. */
  close(): void {
    if (this.#state !== "running") return;
    this.#state = "closing";
    if (this.#workers.size === 0) this.#untrack();
    this.#maybeStopIdle();
    this.#updateRef();
  }

  /** Stops every worker now (SIGKILL, or SIGTERM for "terminate"); queued and running jobs reject with `reason`. */
  terminate(reason: Error, how: "terminate" | "kill" = "kill"): void {
    if (this.#state === "terminated") return;
    this.#state = "terminated";
    this.#untrack();
    this.#failAll(reason);
    for (const w of this.#workers) how === "terminate" ? w.child.terminate() : w.child.kill();
    this.#updateRef();
  }

  /** Lets the program exit without waiting for this set's work: its workers end with the program. */
  detach(): void {
    this.#detached = true;
    this.#updateRef();
  }

  /** Resolves when every worker has exited (after `close()` or `terminate()`). */
  join(): Promise<void> {
    if (this.#workers.size === 0) return Promise.resolve();
    this.#allExited ??= new Promise((resolve) => (this.#resolveAllExited = resolve));
    return this.#allExited;
  }

  /** The claim cells, made when the first worker starts; null without shared memory. */
  #claimCells(): ClaimCells | null {
    if (this.#claims === undefined) this.#claims = ClaimCells.make(this.#options.size, this.#backend.sharedMemory);
    return this.#claims;
  }

  #spawn(): void {
    trace(`starting a ${this.#backend.method} worker`);
    // at most `size` workers are alive, and an exited one gives its slot back
    const claims = this.#claimCells();
    const slot = claims ? claims.take() : -1;
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
        claim: claims ? { block: claims.block, index: slot } : undefined,
      },
    });
    const entry: PoolChild = { name: identity.name, method: this.#backend.method, child };
    poolChildren.add(entry);
    const worker: Worker = {
      child,
      entry,
      ready: false,
      inflight: [],
      ids: [],
      defined: new Set(),
      exited: false,
      sent: 0,
      stopping: false,
      crash: undefined,
      killed: false,
      slot,
      seq: 0,
      completed: 0,
      busySince: undefined,
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
        this.#account(worker);
        this.#dispatch();
        return;
      case "done":
      case "failed": {
        const at = worker.ids.indexOf(message.id);
        if (at < 0) return;
        const [job] = worker.inflight.splice(at, 1);
        worker.ids.splice(at, 1);
        worker.completed++;
        if (message.t === "done") this.#completed++;
        else this.#failed++;
        this.#account(worker);
        if (message.t === "done") {
          this.#serviceMs = Number.isNaN(this.#serviceMs) ? message.ms : this.#serviceMs * 0.8 + message.ms * 0.2;
          if (!job!.cancelled) {
            if (message.h) settleDecoded(job!, message.value, true);
            else job!.settle({ ok: true, value: message.value });
          }
        } else if (!job!.cancelled) settleDecoded(job!, message.error, false);
        // a worker left with one job or none would run dry before the other results are handled
        if (this.#queue.length > 0 && worker.inflight.length > 1) this.#refillSoon();
        else this.#dispatch(); // or nothing to send, but a free worker may take back others' jobs
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
        assertNever(message);
    }
  }

  #onExit(worker: Worker, exitcode: number, signal: string | null, outOfMemory: boolean): void {
    // whether it had started its first unanswered job: read before the slot goes to another worker
    const startedFirst =
      worker.inflight.length > 0 && this.#hasStarted(worker, 0) && (worker.slot >= 0 || worker.ready);
    worker.exited = true;
    this.#account(worker);
    this.#workers.delete(worker);
    poolChildren.delete(worker.entry);
    if (worker.slot >= 0) this.#claims!.give(worker.slot);
    if (!worker.ready && !worker.killed && !this.#started && (this.#state === "running" || this.#state === "closing")) {
      // No worker of this set ever started: replacing it would only fail again (a preload that
      // throws, a flag Node rejects), forever. Its jobs never ran.
      this.#queue.unshiftAll(worker.inflight.filter((job) => !job.cancelled));
      worker.inflight = [];
      this.#break(neverStarted(exitcode, signal));
    }
    const running = runningAtExit(worker.inflight, worker.ids, worker.crash, startedFirst);
    const notStarted = worker.inflight;
    worker.inflight = [];
    const retry = running && !running.cancelled && (running.retried ?? 0) < (this.#options.retries ?? 0);
    if (retry) {
      running!.retried = (running!.retried ?? 0) + 1;
      trace(`retrying a job whose worker died (attempt ${running!.retried + 1})`);
      notStarted.unshift(running!);
    } else if (running && !running.cancelled && this.#state !== "terminated") {
      this.#failed++;
      const exit = { pid: worker.child.pid, exitcode, signal, outOfMemory };
      running.settle({ ok: false, error: crashedWhileRunning(exit, worker.crash, this.#options.maxHeapMb) });
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
    for (const w of this.#workers) w.child.kill();
    this.#updateRef();
  }

  #failAll(error: Error): void {
    const jobs = this.#queue.drain();
    for (const w of this.#workers) {
      jobs.push(...w.inflight);
      w.inflight = [];
      w.ids = [];
      this.#account(w);
    }
    for (const job of jobs) if (!job.cancelled) job.settle({ ok: false, error });
  }

  #dispatch(): void {
    if (this.#state !== "running" && this.#state !== "closing") return;
    this.#assign();
    // a worker is free and nothing is queued: the jobs others have not started come to it
    if (this.#queue.length === 0 && this.#claims && this.#takeBackForFree() > 0) this.#assign();
    this.#maybeStopIdle();
  }

  /**
   * When a worker is free, takes back the jobs waiting behind another job, or for their worker to
   * start. A worker's first job is left alone when the worker is ready: it starts it at once.
   */
  #takeBackForFree(): number {
    let free = false;
    for (const w of this.#workers) {
      if (w.ready && w.inflight.length === 0 && mayTake(w, this.#options.maxTasksPerChild)) {
        free = true;
        break;
      }
    }
    if (!free) return 0;
    let back = 0;
    for (const w of this.#workers) if (w.inflight.length > (w.ready ? 1 : 0)) back += this.#takeBack(w);
    return back;
  }

  #assign(): void {
    const refilled = this.#refilled;
    try {
      while (this.#queue.length) {
        const job = this.#queue.peek()!;
        if (job.cancelled) {
          this.#queue.shift();
          continue;
        }
        const worker = this.#pickWorker();
        if (!worker) break;
        this.#queue.shift();
        refilled.add(worker);
        this.#send(worker, job);
      }
    } finally {
      refilled.clear();
    }
  }

  #pickWorker(): Worker | undefined {
    const best = pickWorker(this.#workers, {
      pending: this.#queue.length + this.#inflight,
      depth: depthFor(this.#serviceMs, this.#claims !== null),
      refilled: this.#refilled,
      maxTasksPerChild: this.#options.maxTasksPerChild,
    });
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
    const id = (worker.seq = (worker.seq + 1) | 0);
    const args = job.encoded ?? encode(job.args, this.#backend.transport, "args");
    const idle = worker.ready && worker.inflight.length === 0;
    worker.inflight.push(job);
    worker.ids.push(id);
    worker.sent++;
    this.#account(worker);
    worker.child.send({ t: "task", id, fn: entry.id, mode: job.mode, args: args.value, h: args.changed });
    // A worker with nothing to run gets its job now, alone: sent with the jobs ahead of it at the
    // tick's end, it would start only once it has received them all, for map chunks a copy of every
    // item (and the other workers would get theirs only after that copy was made here).
    if (idle) worker.child.flush();
  }

  /**
   * While work is queued or running, the workers keep the program alive until the results arrive;
   * an idle pool does not hold the program open (as Python's daemonic pool workers do not).
   */
  #updateRef(): void {
    // a closing or terminated set is waited for until its workers have exited
    const busy = !this.#detached && (this.#queue.length > 0 || this.#inflight > 0 || this.#state !== "running");
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
