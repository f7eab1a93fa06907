/**
 * The messages between a parent and a child it started. Every message has a discriminant `t`;
 * dispatch ends in an exhaustive switch. Payloads are already encoded by `codec.ts`; `h: true`
 * marks one that must be decoded (it holds library objects or errors).
 */
import type { CodeRef } from "../reduction.js";
import type { BlockRef } from "../shm/shared-memory.js";
import type { StartMethod } from "../runtime.js";

/** What every child learns about itself when it starts. */
export interface ChildIdentity {
  name: string;
  daemon: boolean;
  parent: { name: string; pid: number };
  startMethod: StartMethod | undefined;
}

/** Run a `Process`: its target (or subclass) with its arguments. */
export interface RunProcess {
  t: "process";
  identity: ChildIdentity;
  target: CodeRef | undefined;
  /** For a subclass of Process: the class, and the instance's own fields. */
  cls: CodeRef | undefined;
  fields: unknown;
  args: unknown;
  h: boolean;
}

/** Become a pool worker: run the initializer, then serve tasks. */
export interface RunPoolWorker {
  t: "pool";
  identity: ChildIdentity;
  initializer: CodeRef | undefined;
  initargs: unknown;
  h: boolean;
  /** Retire after this many tasks (0: never). */
  maxTasks: number;
  /**
   * The worker's claim cell (an Int32 in shared memory), when the pool has one: the worker claims
   * task `id` by moving it from `id - 1` to `id` before starting it; the pool takes back tasks not
   * started yet by moving it past them (see worker-set.ts). Task ids of a worker then count 1, 2, 3…
   */
  claim?: { block: BlockRef; index: number };
}

/** The first message a child receives. */
export type Boot = RunProcess | RunPoolWorker;

/** Tell the worker how to find function `id` (sent once per worker, before its first use). */
export interface Define {
  t: "define";
  id: number;
  ref: CodeRef;
}

/**
 * Run function `fn` on a batch (`id`: the worker's own count of tasks sent to it). `mode` "call": one call with `args`; "map": one call per item of
 * `args`; "star": one call per argument tuple of `args`.
 */
export interface Task {
  t: "task";
  id: number;
  fn: number;
  mode: "call" | "map" | "star";
  args: unknown;
  h: boolean;
}

/** Ask the worker to finish its current work and exit. */
export interface Stop {
  t: "stop";
}

export type ToChild = Boot | Define | Task | Stop;

/** A task finished: its value (for "map"/"star": the array of values). */
export interface Done {
  t: "done";
  id: number;
  value: unknown;
  h: boolean;
  /** How long the task ran in the worker, in ms (the pool sizes its prefetch from it). */
  ms: number;
}

/** A task threw. */
export interface Failed {
  t: "failed";
  id: number;
  error: unknown;
}

/** The pool worker finished its initializer and waits for tasks. */
export interface Ready {
  t: "ready";
}

/** The child could not start its work: a bad import, a failing initializer, a BootstrapError. */
export interface Fatal {
  t: "fatal";
  error: unknown;
}

/**
 * The worker is dying from an error thrown outside the library's control (a timer, an unhandled
 * rejection). `running` is the task it was running then, or null: only that task is failed.
 */
export interface Crash {
  t: "crash";
  running: number | null;
  error: unknown;
}

export type ToParent = Done | Failed | Ready | Fatal | Crash;

/** For exhaustive switches. */
export function assertNever(value: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(value)}`);
}

const TASK = 0;
const DONE = 1;
const MODES: readonly Task["mode"][] = ["call", "map", "star"];

/**
 * A task or a result as an array, any other message as it is: cloning or serializing an array
 * costs less than half what an object with named fields does, and a pool sends one task and one
 * result per call. `unpack` gives back the message.
 */
export function pack(message: unknown): unknown {
  const m = message as Task | Done;
  if (m.t === "task") return [TASK, m.id, m.fn, MODES.indexOf(m.mode), m.args, m.h];
  if (m.t === "done") return [DONE, m.id, m.value, m.h, m.ms];
  return message;
}

/** The message `pack` made `packed` from. */
export function unpack(packed: unknown): unknown {
  if (!Array.isArray(packed)) return packed;
  if (packed[0] === TASK) {
    return { t: "task", id: packed[1], fn: packed[2], mode: MODES[packed[3]], args: packed[4], h: packed[5] };
  }
  return { t: "done", id: packed[1], value: packed[2], h: packed[3], ms: packed[4] };
}
