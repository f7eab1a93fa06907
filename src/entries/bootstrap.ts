/**
 * What runs inside every child, whatever the start method: the backend's entry script builds a
 * `ParentLink` and calls `runChild` with the first message.
 *
 *   "process": import the target's module (watching for an unguarded entry script), run the target
 *              or the subclass's run(), then wait for its own children and exit with Python's code.
 *   "pool":    run the initializer, say "ready", then run tasks one at a time, in arrival order,
 *              answering each with "done" or "failed"; with a claim cell, a task is claimed
 *              before it starts, and one the pool took back meanwhile is skipped without a word.
 */
import { BootstrapError } from "../errors.js";
import { type CodeRef, explainReferenceError, resolveCode } from "../internal/reduction.js";
import { type Transport, decodeOrImport, encode, encodeError } from "../internal/wire/codec.js";
import { trace } from "../internal/debug.js";
import { saveCompileCacheOnce } from "./compile-cache.js";
import { loadNative } from "../internal/shm/native.js";
import { runBeforeExit, runtime } from "../internal/runtime.js";
import {
  type Boot,
  type RunPoolWorker,
  type RunProcess,
  type Task,
  type ToChild,
  type ToParent,
  assertNever,
} from "../internal/wire/messages.js";

/** The child's end of the channel to its parent. */
export interface ParentLink {
  readonly transport: Transport;
  /** True when this child is an OS process of its own (not a thread sharing its parent's). */
  readonly ownProcess: boolean;
  send(message: ToParent, transfer?: readonly unknown[]): void;
  /** Resolves when everything sent so far has left this process. */
  flush(): Promise<void>;
  onMessage: (message: ToChild) => void;
}

const hooks = {
  importing(on: boolean) {
    runtime.bootstrapping = on;
  },
};

let library: Promise<unknown> | undefined;

/**
 * Decodes a payload that holds library objects. The library's classes (which register how they
 * are rebuilt) load only then: a child whose arguments are plain data starts without them.
 */
async function decodeWithLibrary(value: unknown): Promise<unknown> {
  library ??= import("../index.js");
  await library;
  return decodeOrImport(value, hooks);
}

/**
 * A child that cannot start (a preload threw): says why on its stderr and to the parent, which
 * gives up on it (a pool breaks rather than starting workers that would fail alike), and exits.
 */
export function failStart(error: unknown, link: ParentLink): void {
  process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
  link.send({ t: "fatal", error: encodeError(error, link.transport) });
  void link.flush();
  process.exit(1);
}

/** Runs the child's work and exits the process (or thread) with the right code. */
export async function runChild(link: ParentLink, boot: Boot): Promise<void> {
  runtime.child = true;
  runtime.name = boot.identity.name;
  runtime.daemon = boot.identity.daemon;
  runtime.parent = boot.identity.parent;
  runtime.startMethod = boot.identity.startMethod;
  trace(`started (${boot.t})`);
  switch (boot.t) {
    case "process":
      return exit(await runProcess(boot), link);
    case "pool":
      return runPoolWorker(boot, link);
    default:
      assertNever(boot);
  }
}

async function exit(code: number, link: ParentLink): Promise<void> {
  await runBeforeExit();
  await link.flush();
  process.exit(code);
}

async function runProcess(boot: RunProcess): Promise<number> {
  try {
    const args = (boot.h ? await decodeWithLibrary(boot.args) : boot.args) as unknown[];
    if (boot.cls) {
      const cls = (await resolveCode(boot.cls, hooks)) as new () => { run(): unknown };
      // Build the instance without running user constructors, as unpickling does: the base
      // Process constructor sets up its private state, then the parent's own fields are copied in.
      let base: Function = cls;
      while (Object.getPrototypeOf(base) !== Function.prototype) base = Object.getPrototypeOf(base);
      const self = Reflect.construct(base, [{ name: boot.identity.name }], cls) as { run(): unknown };
      Object.assign(self, boot.h ? await decodeWithLibrary(boot.fields) : boot.fields);
      await self.run();
    } else if (boot.target) {
      const target = await resolveCode(boot.target, hooks);
      await callTarget(target, args, boot.target);
    }
    return 0;
  } catch (error) {
    const shown = boot.target ? explainReferenceError(error, boot.target) : error;
    process.stderr.write(`Process ${runtime.name}:\n${(shown as Error)?.stack ?? String(shown)}\n`);
    return 1;
  }
}

async function callTarget(target: Function, args: unknown[], ref: CodeRef): Promise<unknown> {
  try {
    return await target(...args);
  } catch (error) {
    throw explainReferenceError(error, ref);
  }
}

async function runPoolWorker(boot: RunPoolWorker, link: ParentLink): Promise<void> {
  const refs = new Map<number, CodeRef>();
  const fns = new Map<number, Function>();
  const queue: Task[] = [];
  let running = false;
  let stopping = false;
  let completed = 0;

  let initialized = false;
  let current: number | null = null;
  // An error outside any task (a timer, an unhandled rejection) kills the worker, as it would kill a
  // program. Say first which task, if any, it was running, so that only that task fails.
  const die = (error: unknown) => {
    process.stderr.write(`${runtime.name}: ${(error as Error)?.stack ?? String(error)}\n`);
    link.send({ t: "crash", running: current, error: encodeError(error, link.transport) });
    void link.flush().finally(() => process.exit(1));
  };
  const claim = boot.claim ? claimCell(boot.claim) : undefined;
  process.on("uncaughtException", die);
  process.on("unhandledRejection", die);
  // Ctrl-C reaches every process of the terminal's group: the parent decides what stops
  if (link.ownProcess) process.on("SIGINT", () => {});
  link.onMessage = (message: ToChild) => {
    switch (message.t) {
      case "define":
        refs.set(message.id, message.ref);
        return;
      case "task":
        queue.push(message);
        if (initialized) void drain();
        return;
      case "stop":
        stopping = true;
        if (initialized && !running) void exit(0, link);
        return;
      case "process":
      case "pool":
        return;
      default:
        assertNever(message);
    }
  };

  try {
    if (boot.initializer) {
      const init = await resolveCode(boot.initializer, hooks);
      const initargs = (boot.h ? await decodeWithLibrary(boot.initargs) : boot.initargs) as unknown[];
      await init(...initargs);
    }
  } catch (error) {
    link.send({ t: "fatal", error: encodeError(error, link.transport) });
    return exit(1, link);
  }

  const drain = async () => {
    if (running) return;
    running = true;
    while (queue.length) {
      const task = queue.shift()!;
      // one atomic instruction; it fails only for a task the pool took back (to run it elsewhere)
      if (
        claim &&
        Atomics.compareExchange(claim.cell, claim.index, (task.id - 1) | 0, task.id) !== ((task.id - 1) | 0)
      ) {
        trace(`task ${task.id} was taken back`);
        continue;
      }
      const ref = refs.get(task.fn)!;
      let fn = fns.get(task.fn);
      try {
        if (!fn) {
          trace(`resolving ${ref.name || "anonymous"} from ${ref.module}`);
          fn = await resolveCode(ref, hooks);
          trace(`resolved ${ref.name || "anonymous"}`);
          fns.set(task.fn, fn);
          saveCompileCacheOnce();
        }
      } catch (error) {
        if (error instanceof BootstrapError || (error as Error)?.name === "BootstrapError") {
          link.send({ t: "fatal", error: encodeError(error, link.transport) });
          return exit(1, link);
        }
        link.send({ t: "failed", id: task.id, error: encodeError(error, link.transport) });
        continue;
      }
      try {
        // results of earlier tasks leave before this one starts: if it kills the worker (out of
        // memory, a kill), the parent must know they were done
        void link.flush();
        const started = process.hrtime.bigint();
        current = task.id;
        trace(`task ${task.id} starts`);
        // a synchronous task's result is sent in the same tick as the others: they leave together
        let value = runTask(fn, task);
        if (isThenable(value)) value = await value;
        trace(`task ${task.id} done`);
        current = null;
        const out = encode(value, link.transport, "result");
        link.send({ t: "done", id: task.id, value: out.value, h: out.changed, ms: elapsedMs(started) });
      } catch (error) {
        current = null;
        link.send({ t: "failed", id: task.id, error: encodeError(explainReferenceError(error, ref), link.transport) });
      }
      completed++;
      if (boot.maxTasks > 0 && completed >= boot.maxTasks) stopping = true;
      if (stopping) return exit(0, link);
    }
    running = false;
  };

  initialized = true;
  link.send({ t: "ready" });
  if (stopping && queue.length === 0) return exit(0, link);
  void drain();
}

/**
 * Maps the worker's claim cell. A segment is mapped through the addon directly, not through
 * shared-memory.ts, which would load every backend into the worker.
 */
function claimCell(claim: NonNullable<RunPoolWorker["claim"]>): { cell: Int32Array; index: number } {
  const { block } = claim;
  const buffer = block.k === "sab" ? block.sab : loadNative()!.open(block.name, block.size, false);
  return { cell: new Int32Array(buffer, block.offset, block.bytes / 4), index: claim.index };
}

/**
 * Milliseconds since `since` (process.hrtime.bigint()). Not performance.now(): its first use loads
 * ten of Node's modules (perf_hooks), on the way to a new worker's first result.
 */
function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

/** Runs a task; returns a promise only when something in it is asynchronous. */
function runTask(fn: Function, task: Task): unknown {
  if (task.h) return decodeWithLibrary(task.args).then((args) => runWith(fn, task, args as unknown[]));
  return runWith(fn, task, task.args as unknown[]);
}

function runWith(fn: Function, task: Task, args: unknown[]): unknown {
  if (task.mode === "call") return fn(...args);
  const star = task.mode === "star";
  // The chunk arrived as an array V8 made holey (every deserialized array is), and the results go
  // back the same way. Array.prototype.map makes them a packed array, fast to build and to clone;
  // a loop is 3–5 times slower to fill one, and a holey result (new Array(n), or a copy of the
  // chunk) is 10–20 times slower to clone, element by element with each index. map skips holes,
  // which the loop (and Python) call fn with as undefined: a chunk with a hole, or an undefined
  // (includes() cannot tell them apart), takes the loop.
  if (!args.includes(undefined)) {
    let from = -1;
    let first: unknown;
    const out = args.map((item, i) => {
      if (from >= 0) return undefined; // an async fn: the rest run one by one, after this one
      const value = star ? fn(...(item as unknown[])) : fn(item);
      if (isThenable(value)) {
        from = i;
        first = value;
      }
      return value;
    });
    return from < 0 ? out : finishAsync(fn, task, args, out.slice(0, from), from, first);
  }
  // filled by push, the array is packed
  const out: unknown[] = [];
  for (let i = 0; i < args.length; i++) {
    const value = star ? fn(...(args[i] as unknown[])) : fn(args[i]);
    if (isThenable(value)) return finishAsync(fn, task, args, out, i, value);
    out.push(value);
  }
  return out;
}

async function finishAsync(fn: Function, task: Task, args: unknown[], out: unknown[], from: number, first: unknown) {
  out.push(await first);
  for (let i = from + 1; i < args.length; i++) {
    let value = task.mode === "map" ? fn(args[i]) : fn(...(args[i] as unknown[]));
    if (isThenable(value)) value = await value;
    out.push(value);
  }
  return out;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}
