/**
 * `Process`: one child running one function, with Python's lifecycle and exit codes.
 *
 *   new Process({ target, args }) ── start() ──► backend.launch({ boot: "process" }) ──► child runs target
 *        exitcode: null ............................................... 0 | n | 1 | -signal ◄── exit
 *
 * Non-daemon children keep the parent alive until they end (Node's event loop waits for them, and
 * a child process waits for its own before exiting). Daemon children are stopped when their parent
 * exits, and may not start children of their own. However a parent dies, its children see their
 * channel close and exit: none outlives it.
 */
import { inspect } from "node:util";
import type { RunningChild } from "./internal/pool/backend.js";
import { bunVersion } from "./backends/host.js";
import { BootstrapError, ProcessError } from "./errors.js";
import { encode } from "./internal/wire/codec.js";
import { stopOnInterrupt } from "./internal/interrupt.js";
import { type PoolChild, poolChildren } from "./internal/pool/pool-children.js";
import { backendFor, resolveMethod } from "./backends/registry.js";
import { type StartMethod, runtime } from "./internal/runtime.js";
import { checkOptionNames, checkTimeout, optionNames } from "./internal/validate.js";
import type { ChildIdentity } from "./internal/wire/messages.js";
import { codeRef } from "./internal/reduction.js";

/**
 * Options of `new Process(...)`.
 * @typeParam F - the type of `target`, which types `args`.
 */
export interface ProcessOptions<F extends (...args: any[]) => unknown = (...args: any[]) => unknown> {
  /** The function the child runs; its return (or resolution) ends the child with exit code 0. */
  target?: F;
  /** Arguments for `target`, sent by structured clone; library objects arrive connected. */
  args?: Parameters<F>;
  /** Defaults to `Process-N` (`Parent:N` for a child's children). */
  name?: string;
  /** A daemon is stopped when its parent exits and may not have children. Defaults to the parent's flag. */
  daemon?: boolean;
  /** The start method: `"spawn"` (default) or `"thread"`. */
  context?:
    | StartMethod
    | {
        /** The start method, as a {@link Context} carries it. */
        readonly startMethod: StartMethod;
      };
  /**
   * Heap limit of the child in MiB: past it the child dies (thread: exit code 1; spawn: SIGABRT).
   * Not on Bun, whose engine cannot limit a heap: there it is a `ProcessError`.
   */
  maxHeapMb?: number;
}

const processOptionNames = optionNames<ProcessOptions>({
  target: true,
  args: true,
  name: true,
  daemon: true,
  context: true,
  maxHeapMb: true,
});

type State = "initial" | "started" | "stopped" | "closed";

const alive = new Set<Process>();
let exitHooksInstalled = false;
/** Set while a pool worker is wrapped as a Process: it takes no number from the child counter. */
let wrapping = false;
/** The Process that stands for each pool worker, once activeChildren() has listed it. */
const poolWorkerViews = new WeakMap<PoolChild, Process>();

/**
 * A unit of work running in its own process (start method `"spawn"`) or worker thread (`"thread"`),
 * like Python's `multiprocessing.Process`. Subclass it and override `run()`, or pass a `target`.
 *
 * The target must be exported from its module (workers import it by name) or be self-contained.
 */
export class Process {
  #target: ((...args: any[]) => unknown) | undefined;
  #args: unknown[];
  #name: string;
  #daemon: boolean;
  #method: StartMethod;
  #state: State = "initial";
  #child: RunningChild | undefined;
  #exitcode: number | null = null;
  #exited: Promise<void> | undefined;
  #joiners = 0;
  #maxHeapMb: number | undefined;
  /** True for a pool worker's view: its pool decides whether it keeps the program alive. */
  #pooled = false;

  constructor(options: ProcessOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`Process options must be an object such as { target, args } (got ${typeof options})`);
    }
    checkOptionNames(options, processOptionNames, "new Process()");
    const { target, args = [], name, daemon, maxHeapMb } = options;
    if (target !== undefined && typeof target !== "function") {
      throw new TypeError(`options.target must be a function (got ${typeof target})`);
    }
    if (!Array.isArray(args)) throw new TypeError(`options.args must be an array of arguments (got ${typeof args})`);
    if (name !== undefined && typeof name !== "string") {
      throw new TypeError(`options.name must be a string (got ${typeof name})`);
    }
    if (daemon !== undefined && typeof daemon !== "boolean") {
      throw new TypeError(`options.daemon must be a boolean (got ${typeof daemon})`);
    }
    if (maxHeapMb !== undefined && (!Number.isInteger(maxHeapMb) || maxHeapMb < 1)) {
      throw new RangeError(`options.maxHeapMb must be a whole number of MiB >= 1 (got ${maxHeapMb})`);
    }
    if (maxHeapMb !== undefined && bunVersion !== undefined) {
      // JavaScriptCore takes no heap limit: the child would grow without one, so refuse it at once
      throw new ProcessError(
        `options.maxHeapMb is not available on Bun ${bunVersion}: its JavaScript engine cannot limit a heap. ` +
          "Run the program with Node.js to bound a child's heap, or leave maxHeapMb out.",
      );
    }
    this.#maxHeapMb = maxHeapMb;
    this.#method = resolveMethod(options, "process", "Process");
    this.#target = target;
    this.#args = args;
    const n = wrapping ? 0 : ++runtime.childCounter;
    this.#name = name ?? (runtime.child ? `${runtime.name}:${n}` : `Process-${n}`);
    this.#daemon = daemon ?? runtime.daemon;
  }

  /** The process's name; any string. */
  get name(): string {
    return this.#name;
  }
  /** Renames it; a name that is not a string throws a TypeError. */
  set name(value: string) {
    if (typeof value !== "string") throw new TypeError(`name must be a string (got ${typeof value})`);
    this.#name = value;
  }

  /** Whether this is a daemon. Set it before `start()`. */
  get daemon(): boolean {
    return this.#daemon;
  }
  /** Sets the flag; throws a ProcessError once the process has started, a TypeError for a non-boolean. */
  set daemon(value: boolean) {
    if (this.#state !== "initial") throw new ProcessError("daemon can only be set before the process is started");
    if (typeof value !== "boolean") throw new TypeError(`daemon must be a boolean (got ${typeof value})`);
    this.#daemon = value;
  }

  /** OS process id once started (for a thread: this process's pid); undefined before `start()`. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Null while running; then 0, the code given to `process.exit(n)`, 1 after an uncaught error, or -signal. */
  get exitcode(): number | null {
    return this.#exitcode;
  }

  /** The start method this process uses. */
  get startMethod(): StartMethod {
    return this.#method;
  }

  /** What the child runs. The default calls `target(...args)`; subclasses override it. */
  run(): unknown {
    return this.#target?.(...this.#args);
  }

  /**
   * Starts the child and returns at once. Throws a SerializationError naming the offending argument
   * when an argument cannot be sent, and BootstrapError when called while a worker is still importing
   * its task module (an entry script without its `isMain(import.meta)` guard).
   */
  start(): this {
    this.#checkOpen();
    if (this.#state !== "initial") throw new ProcessError(`cannot start a process twice (${this.#name})`);
    checkMayStartChildren();
    if (runtime.daemon) {
      throw new ProcessError(`daemonic processes are not allowed to have children (${runtime.name} is a daemon)`);
    }
    const backend = backendFor(this.#method);
    const subclassed = Object.getPrototypeOf(this).run !== Process.prototype.run;
    const identity: ChildIdentity = {
      name: this.#name,
      daemon: this.#daemon,
      parent: { name: runtime.name, pid: process.pid },
      startMethod: runtime.startMethod,
    };
    let boot: Parameters<typeof backend.launch>[0]["boot"];
    if (subclassed) {
      const cls = codeRef(this.constructor, `Process subclass ${this.constructor.name}`);
      const fields = encode({ ...this }, backend.transport, "this");
      boot = { t: "process", identity, target: undefined, cls, fields: fields.value, args: [], h: fields.changed };
    } else {
      const target = this.#target === undefined ? undefined : codeRef(this.#target, "options.target");
      const args = encode(this.#args, backend.transport, "args");
      boot = { t: "process", identity, target, cls: undefined, fields: undefined, args: args.value, h: args.changed };
    }
    installExitHooks();
    const child = backend.launch({ boot, maxHeapMb: this.#maxHeapMb });
    this.#child = child;
    this.#state = "started";
    alive.add(this);
    if (this.#daemon) child.unref();
    const untrack = stopOnInterrupt({ interrupt: () => this.terminate() });
    this.#exited = child.exited.then((exit) => {
      untrack();
      this.#exitcode = exit.exitcode;
      if (this.#state === "started") this.#state = "stopped";
      alive.delete(this);
    });
    return this;
  }

  /**
   * Waits until the process ends, or until `timeout` ms have passed (then it is still running:
   * check `isAlive()` or `exitcode`). Never rejects because of the child's own failure.
   */
  async join(timeout?: number): Promise<void> {
    this.#checkOpen();
    checkTimeout(timeout, "timeout");
    if (!this.#exited) throw new ProcessError(`can only join a started process (${this.#name} was not started)`);
    // A daemon does not keep the program alive, but one being joined must (as in Python).
    const hold = this.#daemon && !this.#pooled;
    if (this.#joiners++ === 0 && hold) this.#child?.ref();
    try {
      if (timeout === undefined) return await this.#exited;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
      clearTimeout(timer);
    } finally {
      if (--this.#joiners === 0 && hold) this.#child?.unref();
    }
  }

  /**
   * @internal A pool worker as a started daemon Process, for activeChildren(): its pid, name,
   * `isAlive()`, `join()` and `exitcode` are the worker's; `terminate()` or `kill()` stops it, and
   * its pool replaces it (the task it ran fails with WorkerCrashedError), as in Python.
   */
  static _ofPoolWorker(worker: PoolChild): Process {
    wrapping = true;
    let view: Process;
    try {
      view = new Process({ name: worker.name, daemon: true, context: worker.method });
    } finally {
      wrapping = false;
    }
    view.#child = worker.child;
    view.#state = "started";
    view.#pooled = true;
    view.#exited = worker.child.exited.then((exit) => {
      view.#exitcode = exit.exitcode;
      if (view.#state === "started") view.#state = "stopped";
    });
    return view;
  }

  /** @internal Resolves when the child has ended, without keeping the program alive. */
  get _ended(): Promise<void> | undefined {
    return this.#exited;
  }

  /** True from `start()` until the child has ended. */
  isAlive(): boolean {
    this.#checkOpen();
    return this.#state === "started" && this.#exitcode === null;
  }

  /** Asks the child to stop with SIGTERM (exit code -15). A thread is stopped at once. */
  terminate(): void {
    this.#checkOpen();
    if (this.isAlive()) this.#child!.terminate();
  }

  /** Stops the child with SIGKILL (exit code -9). */
  kill(): void {
    this.#checkOpen();
    if (this.isAlive()) this.#child!.kill();
  }

  /** Releases the process object; refuses while the child still runs. Later calls throw. */
  close(): void {
    if (this.#state === "closed") return;
    if (this.#state === "started" && this.#exitcode === null) {
      throw new ProcessError(
        `cannot close process ${this.#name} while it is still running: call join() or terminate() first`,
      );
    }
    this.#state = "closed";
    this.#child = undefined;
  }

  #checkOpen(): void {
    if (this.#state === "closed") throw new ProcessError(`process object ${this.#name} is closed`);
  }

  /** Shows the name, the state, the start method, the pid once started and whether it is a daemon. */
  [inspect.custom](): string {
    const status = this.#state === "started" && this.#exitcode !== null ? "stopped" : this.#state;
    const parts = [`name: '${this.#name}'`, `state: '${status}'`, `method: '${this.#method}'`];
    if (this.#child) parts.push(`pid: ${this.#child.pid}`);
    if (this.#daemon) parts.push("daemon: true");
    if (this.#exitcode !== null) parts.push(`exitcode: ${this.#exitcode}`);
    return `${this.constructor.name} { ${parts.join(", ")} }`;
  }
}

/** Throws BootstrapError when a worker is still importing its task module: the missing-guard case. */
export function checkMayStartChildren(): void {
  if (runtime.bootstrapping) {
    throw new BootstrapError(
      "a new process was started while a worker was still importing the module that defines its task. " +
        "That module runs its program code again in every worker, which would start workers without end. " +
        'Guard the program code of your entry script with isMain, Python\'s `if __name__ == "__main__"`:\n\n' +
        '  import { isMain } from "multiprocessing-ts";\n' +
        "  if (isMain(import.meta)) {\n    // create pools and processes here\n  }\n",
    );
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // At exit, daemons are stopped. A child (which exits explicitly) first waits for its non-daemon
  // children, as Python's atexit handler does; the main process's event loop already waits for them.
  process.on("exit", () => {
    for (const p of alive) if (p.daemon) p.terminate();
  });
  runtime.beforeExit.push(async () => {
    for (const p of [...alive]) if (p.daemon) p.terminate();
    await Promise.all([...alive].map((p) => p.join()));
  });
}

/** What `currentProcess()` and `parentProcess()` describe. */
export interface ProcessInfo {
  /** The process's name: `MainProcess`, `Process-N`, or the name it was given. */
  readonly name: string;
  /** The OS process id (for the "thread" start method, the pid of the process the thread runs in). */
  readonly pid: number;
  /** Whether it is a daemon. */
  readonly daemon: boolean;
}

/** The process this code runs in: `MainProcess` in the program's own process. */
export function currentProcess(): ProcessInfo {
  return Object.freeze({ name: runtime.name, pid: process.pid, daemon: runtime.daemon });
}

/** The process that started this one, or null in the main process. */
export function parentProcess(): {
  /** The parent's name. */
  readonly name: string;
  /** The parent's OS process id. */
  readonly pid: number;
} | null {
  return runtime.parent ? Object.freeze({ ...runtime.parent }) : null;
}

/**
 * The children of this process that are still running: its `Process`es, then the workers of its
 * pools and executors (as Python lists them too), each a daemon `Process` named like
 * `PoolWorker-1`. The same worker is the same object on every call.
 */
export function activeChildren(): Process[] {
  const workers: Process[] = [];
  for (const worker of poolChildren) {
    let view = poolWorkerViews.get(worker);
    if (!view) poolWorkerViews.set(worker, (view = Process._ofPoolWorker(worker)));
    workers.push(view);
  }
  return [...alive, ...workers].filter((p) => p.exitcode === null);
}
