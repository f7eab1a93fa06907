/**
 * The "thread" start method: every child is a `worker_threads` Worker with its own V8 isolate and
 * heap. Exit codes follow the spawn method's convention: a terminated thread reports -15, a killed
 * one -9, although Node stops both the same way.
 *
 * On Node 20, tsx does not register its loader in worker threads by itself, so a worker started
 * under tsx registers it (from `tsx/esm/api`) before it imports its first TypeScript module.
 *
 * A pool worker told to stop while it still loads its modules (before it says "ready") is stopped
 * once it is ready instead, or after 5 s at most: Node leaks the file descriptors of the module
 * files a thread was reading when it is terminated, and a pool that fails to start, or is
 * terminated at once, would leak them for every worker.
 */
import { Worker } from "node:worker_threads";
import { threadEntry } from "../internal/paths.js";
import { pack, unpack, type ToParent } from "../internal/wire/messages.js";
import { childFlags, launchEnvironment } from "./environment.js";
import { handoffRoot, serveHandoffs } from "../internal/thread-handoff.js";
import type { Backend, ChildExit, LaunchOptions, RunningChild } from "../internal/pool/backend.js";
import { threadExited, threadLaunched, threadLifelines } from "../internal/identity.js";

const entry = threadEntry;

/**
 * Messages of one tick leave in one postMessage: a postMessage costs microseconds, and a pool
 * sends one message per task and per result (a worker sends the results of the short tasks it ran
 * in one go together). A message with a transfer list goes alone, after those queued before it.
 * Tasks and results travel packed (see `pack`).
 */
export class Batcher {
  #queued: unknown[] = [];
  constructor(readonly post: (message: unknown, transfer?: readonly unknown[]) => void) {}

  send(message: unknown, transfer?: readonly unknown[]): void {
    if (transfer?.length) {
      this.flush();
      this.post(message, transfer);
      return;
    }
    if (this.#queued.push(pack(message)) === 1) queueMicrotask(() => this.flush());
  }

  /** Posts what is queued now. */
  flush(): void {
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    this.post(queued.length === 1 ? queued[0] : { t: BATCH, m: queued });
  }
}

const BATCH = "\u0000batch";
/** Delivers each message of a batch (or the one message) to `deliver`. */
export function unbatch(message: unknown, deliver: (message: unknown) => void): void {
  if ((message as { t?: unknown })?.t === BATCH) for (const m of (message as { m: unknown[] }).m) deliver(unpack(m));
  else deliver(unpack(message));
}

export const threadBackend: Backend = {
  method: "thread",
  transport: "clone",
  sharedMemory: "sab",
  launch(options: LaunchOptions): RunningChild {
    const flags = childFlags("thread");
    // the thread at the top holds shared memory that queue items carry between threads
    serveHandoffs();
    const workerOptions = {
      workerData: {
        boot: options.boot,
        handoffRoot: handoffRoot(),
        tsx: flags.tsxApi,
        preloads: flags.preloads,
        execArgv: launchEnvironment.execArgv,
        cwd: launchEnvironment.cwd,
        lifelines: threadLifelines(),
      },
      stdout: false,
      stderr: false,
      resourceLimits: options.maxHeapMb ? { maxOldGenerationSizeMb: options.maxHeapMb } : undefined,
    };
    let worker: Worker;
    try {
      worker = new Worker(entry, { ...workerOptions, execArgv: flags.execArgv });
    } catch (error) {
      if ((error as { code?: string }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw error;
      // a flag workers do not take (--max-old-space-size, --expose-gc, …): keep the preloads
      const preloads = flags.execArgv.filter((flag) => flag.startsWith("--require="));
      worker = new Worker(entry, { ...workerOptions, execArgv: preloads });
    }
    // the id is gone from `worker` once it exits: keep it for the record of ended threads
    const id = worker.threadId;
    threadLaunched(id);
    let intent: number | undefined;
    let exit: ChildExit | undefined;
    // a pool worker is loading until it says "ready"; a stop asked for meanwhile waits for that
    let loading = options.boot.t === "pool";
    let deferred: (() => void) | undefined;
    const stop = (code: -9 | -15) => {
      if (exit) return;
      intent ??= code;
      if (!loading) {
        void worker.terminate();
        return;
      }
      if (deferred) return;
      deferred = () => void worker.terminate();
      setTimeout(() => deferred?.(), 5000).unref();
    };
    let outOfMemory = false;
    const exited = new Promise<ChildExit>((resolve) => {
      worker.on("exit", (code) => {
        threadExited(id);
        const signal = intent === -9 ? "SIGKILL" : intent === -15 ? "SIGTERM" : null;
        exit = { exitcode: intent ?? code, signal, outOfMemory };
        resolve(exit);
      });
    });
    worker.on("error", (error) => {
      if ((error as { code?: string })?.code === "ERR_WORKER_OUT_OF_MEMORY") {
        outOfMemory = true;
        return;
      }
      // an error thrown outside the child's own handlers (e.g. in a timer)
      process.stderr.write(`${error?.stack ?? String(error)}\n`);
    });
    const out = new Batcher((message, transfer) => {
      if (!exit) worker.postMessage(message, transfer as never);
    });
    const handle: RunningChild = {
      pid: process.pid,
      send(message, transfer) {
        out.send(message, transfer);
      },
      flush() {
        out.flush();
      },
      onMessage: () => {},
      exited,
      terminate() {
        stop(-15);
      },
      kill() {
        stop(-9);
      },
      unref() {
        worker.unref();
      },
      ref() {
        worker.ref();
      },
    };
    worker.on("message", (message) =>
      unbatch(message, (m) => {
        if (loading && (m as ToParent).t === "ready") {
          loading = false;
          if (deferred) {
            deferred();
            return;
          }
        }
        handle.onMessage(m as ToParent);
      }),
    );
    return handle;
  },
};
