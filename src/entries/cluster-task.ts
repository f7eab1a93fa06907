/**
 * The body of every cluster task, run inside one of a cluster worker's local children (a thread or
 * process of the worker's own Pool): it finds the task's function under the worker's root (refusing
 * a module whose text differs from the caller's), decodes the arguments, runs the call or the chunk
 * and encodes the outcome. A task that throws returns its error as a value: the job completes, and
 * the caller rethrows it; only a lost worker makes BullMQ run a job again.
 *
 * This file is an entry of the bundle, so that the local child imports it by name beside the rest
 * of the library (see `taskModule` in worker.ts).
 */
import { relative } from "node:path";
import { deserialize } from "node:v8";
import { ProcessError } from "../errors.js";
import { type ResolveHooks, resolveCode } from "../internal/reduction.js";
import { decodeOrImport } from "../internal/wire/codec.js";
import {
  type WireArgs,
  type WireJob,
  type WireResult,
  type WireResults,
  localRef,
  localRefs,
  setProjectRoot,
  wireOutcome,
} from "../internal/cluster/protocol.js";

const hooks: ResolveHooks = { importing() {} };

/** Runs one cluster job under `root` and returns its outcome as the job's return value. */
export async function runClusterTask(root: string, job: WireJob): Promise<WireResult | WireResults> {
  setProjectRoot(root);
  let fn: (...args: unknown[]) => unknown;
  try {
    fn = (await resolveCode(localRef(job.fn, root), hooks)) as (...args: unknown[]) => unknown;
  } catch (error) {
    const outcome = wireOutcome({ ok: false, error: explainImport(error, root) });
    return "calls" in job ? { ok: true, calls: job.calls.map(() => outcome) } : outcome;
  }
  if (!("calls" in job)) return runOne(fn, job.mode, job, root);
  // one after another, each with its own outcome, as if each were a job of its own
  const each = job.mode === "chunks" ? job.each : "call";
  const calls: WireResult[] = [];
  for (const call of job.calls) calls.push(await runOne(fn, each, call, root));
  return { ok: true, calls };
}

/** Runs one call or one chunk of `fn` on the arguments `wire` carries; its outcome as a job returns it. */
async function runOne(
  fn: (...args: unknown[]) => unknown,
  mode: "call" | "map" | "star",
  wire: WireArgs,
  root: string,
): Promise<WireResult> {
  try {
    let args = deserialize(Buffer.from(wire.args, "base64")) as unknown[];
    if (wire.changed) args = (await decodeOrImport(localRefs(args, root), hooks)) as unknown[];
    if (mode === "call") return wireOutcome({ ok: true, value: await fn(...args) });
    const values: unknown[] = new Array(args.length);
    for (let i = 0; i < args.length; i++) {
      const out = mode === "star" ? fn(...(args[i] as unknown[])) : fn(args[i]);
      values[i] = isThenable(out) ? await out : out;
    }
    return wireOutcome({ ok: true, value: values });
  } catch (error) {
    return wireOutcome({ ok: false, error: explainImport(error, root) });
  }
}

/**
 * Node's "Unknown file extension" for a TypeScript task module, which this worker cannot import
 * (it runs under plain Node.js without type stripping), as an error that says how to start it.
 */
function explainImport(error: unknown, root: string): unknown {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== "ERR_UNKNOWN_FILE_EXTENSION" || typeof message !== "string") return error;
  const file = / for (.+\.[cm]?tsx?)$/.exec(message)?.[1];
  if (!file) return error;
  return new ProcessError(
    `${relative(root, file)} is TypeScript, and this cluster worker runs under plain Node.js ${process.version}, which cannot import it: ` +
      "start the worker under tsx (node --import tsx node_modules/multiprocessing-ts/dist/cli.js worker …), or export the task from compiled JavaScript",
    { cause: error },
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
