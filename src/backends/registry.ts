/**
 * The start-method registry: validation, the process-wide default, and for each method its
 * capability record, its backend (for a method that launches local children) or its own pool
 * engine. The only place that maps a method name to what implements it.
 *
 * Code that needs more than pools asks `resolveMethod(options, need, what)`, which refuses a method
 * that lacks the capability with an error naming the method and what to use instead.
 */
import type { Backend } from "../internal/pool/backend.js";
import { spawnBackend } from "./spawn.js";
import { threadBackend } from "./thread.js";
import { ProcessError } from "../errors.js";
import type { Capabilities, EngineOptions, PoolEngine } from "../internal/pool/engine.js";
import { CLUSTER_ENV, ClusterEngine } from "../internal/cluster/engine.js";
import { type SharedMemoryKind, type StartMethod, runtime } from "../internal/runtime.js";

/** One start method as the registry knows it. */
export interface StartMethodEntry {
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Launches local children; absent for a method that offers pools only. */
  readonly backend?: Backend;
  /**
   * Makes the engine of one Pool or executor. Without it, the method's pools run on `WorkerSet`
   * over its backend (see engines.ts).
   */
  readonly engine?: (options: EngineOptions) => PoolEngine;
}

/** A method whose pools, processes and primitives run on a local backend. */
function local(backend: Backend): StartMethodEntry {
  return {
    name: backend.method,
    capabilities: { process: true, primitives: true, sharedMemory: backend.sharedMemory },
    backend,
  };
}

const registry = new Map<string, StartMethodEntry>([
  ["spawn", local(spawnBackend)],
  ["thread", local(threadBackend)],
  // pools only, on remote workers: chosen by { cluster: url } or MULTIPROCESSING_TS_CLUSTER, never by name
  [
    "cluster",
    {
      name: "cluster",
      capabilities: { process: false, primitives: false, sharedMemory: "none" },
      engine: (options) => new ClusterEngine(options),
    },
  ],
]);

/** The method used when none is given or set. */
export const DEFAULT_METHOD: StartMethod = "spawn";

/**
 * Adds a start method (the built-in ones cannot be replaced). Returns a function that removes it
 * again. Pool and Executor then run on its engine; everything else asks its capabilities.
 */
export function registerStartMethod(entry: StartMethodEntry): () => void {
  if (registry.has(entry.name)) throw new ProcessError(`the start method "${entry.name}" is already registered`);
  if (!entry.engine && !entry.backend) {
    throw new TypeError(
      `the start method "${entry.name}" needs an engine for its pools or a backend to launch workers`,
    );
  }
  if (entry.capabilities.process && !entry.backend) {
    throw new TypeError(`the start method "${entry.name}" cannot offer processes without a backend to launch them`);
  }
  registry.set(entry.name, entry);
  return () => {
    if (registry.get(entry.name) === entry) registry.delete(entry.name);
  };
}

/** Every registered start method, in registration order. */
export function startMethodNames(): StartMethod[] {
  return [...registry.keys()].filter((name) => name !== "cluster") as StartMethod[];
}

/** Checks a start method name, with advice for Python's methods that Node.js cannot offer. */
export function checkMethod(method: unknown, what = "start method"): StartMethod {
  if (method === "cluster") {
    throw new TypeError(
      `"cluster" is not a ${what} to name: give a Pool or ProcessPoolExecutor { cluster: "redis://host:6379" }, or set ${CLUSTER_ENV}`,
    );
  }
  if (typeof method === "string" && registry.has(method)) return method as StartMethod;
  if (method === "fork" || method === "forkserver") {
    throw new ProcessError(
      `the "${method}" ${what} is not available: Node.js cannot fork a running process. ` +
        'Use "spawn" (a fresh Node.js process per child, the default) or "thread" (a worker thread, lowest overhead).',
    );
  }
  const names = [...registry.keys()].filter((name) => name !== "cluster").map((name) => `"${name}"`);
  const list = names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : names[0];
  throw new TypeError(`${what} must be ${list} (got ${JSON.stringify(method)})`);
}

/** What a constructor needs of its start method besides pools. */
export type Need = "process" | "primitives";

/**
 * The start method a constructor's `options.context` names (a method name or a context object),
 * or the default one. With `need`, a method without that capability is refused with an error
 * naming `what` (the class, e.g. "Queue") and the methods that offer it.
 */
export function resolveMethod(
  options: { readonly context?: unknown; readonly cluster?: unknown } | null | undefined,
  need?: Need,
  what?: string,
): StartMethod {
  const context = options?.context;
  // a pool with { cluster }, or one without a context when the environment names a cluster
  if (need === undefined && (options?.cluster !== undefined || (context === undefined && process.env[CLUSTER_ENV]))) {
    if (context !== undefined) {
      throw new TypeError(
        "options.cluster and options.context cannot be given together: a cluster pool runs on remote workers",
      );
    }
    return "cluster" as StartMethod;
  }
  const named = typeof context === "object" && context ? (context as { startMethod?: unknown }).startMethod : context;
  const method =
    named === undefined || named === null ? (runtime.startMethod ?? DEFAULT_METHOD) : checkMethod(named, "context");
  const entry = registry.get(method)!;
  if (need && !entry.capabilities[need]) {
    const offering = [...registry.values()].filter((m) => m.capabilities[need]).map((m) => `"${m.name}"`);
    const other = offering[0] ?? `"${DEFAULT_METHOD}"`;
    const noun = what ?? (need === "process" ? "Process" : "shared object");
    const thing = `${/^[AEIOU]/i.test(noun) ? "an" : "a"} ${noun}`;
    throw new ProcessError(
      `the "${method}" start method cannot make ${thing}: it offers ${offers(entry)} only. ` +
        `Make it with { context: ${other} } or getContext(${other}) instead.`,
    );
  }
  return method;
}

function offers(entry: StartMethodEntry): string {
  const parts = ["pools (Pool, ProcessPoolExecutor)"];
  if (entry.capabilities.process) parts.push("processes");
  if (entry.capabilities.primitives) parts.push("queues, locks and shared values");
  return parts.join(" and ");
}

/** The registry's record of `method`. */
export function startMethod(method: StartMethod): StartMethodEntry {
  const entry = registry.get(method);
  if (!entry) throw new ProcessError(`the start method "${method}" is not registered`);
  return entry;
}

/** What `method` can do besides pools. */
export function capabilitiesOf(method: StartMethod): Capabilities {
  return startMethod(method).capabilities;
}

/** The memory `method`'s children share with their parent: what its primitives are allocated in. */
export function memoryOf(method: StartMethod): SharedMemoryKind {
  const kind = startMethod(method).capabilities.sharedMemory;
  if (kind === "none") {
    throw new ProcessError(`the "${method}" start method has no memory its workers share with this process`);
  }
  return kind;
}

/** The backend that launches children for `method` (one with the "process" capability). */
export function backendFor(method: StartMethod): Backend {
  const backend = startMethod(method).backend;
  if (!backend) throw new ProcessError(`the "${method}" start method launches no local children`);
  return backend;
}
