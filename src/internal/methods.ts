/**
 * Choosing a start method: validation, the process-wide default, and the backend for each method.
 * The only place that maps a method name to a backend.
 */
import { spawnBackend } from "../backends/spawn.js";
import { threadBackend } from "../backends/thread.js";
import type { Backend } from "../backends/backend.js";
import { ProcessError } from "../errors.js";
import { type StartMethod, runtime } from "./runtime.js";

const backends: Record<StartMethod, Backend> = { spawn: spawnBackend, thread: threadBackend };

/** Checks a start method name, with advice for Python's methods that Node.js cannot offer. */
export function checkMethod(method: unknown, what = "start method"): StartMethod {
  if (method === "spawn" || method === "thread") return method;
  if (method === "fork" || method === "forkserver") {
    throw new ProcessError(
      `the "${method}" ${what} is not available: Node.js cannot fork a running process. ` +
        'Use "spawn" (a fresh Node.js process per child, the default) or "thread" (a worker thread, lowest overhead).',
    );
  }
  throw new TypeError(`${what} must be "spawn" or "thread" (got ${JSON.stringify(method)})`);
}

/** The method to use when a constructor was given `context` (or not). */
export function resolveMethod(context: unknown): StartMethod {
  if (context === undefined || context === null) return runtime.startMethod ?? "spawn";
  return checkMethod(context, "context");
}

/** The backend that launches children for `method`. */
export function backendFor(method: StartMethod): Backend {
  return backends[method];
}
