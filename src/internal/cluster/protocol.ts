/**
 * What a cluster job carries between machines, and how each side makes and reads it.
 *
 *   caller: fn ─► CodeRef ─► module path relative to the project root + content hash  ┐
 *           args ─► refuse machine-local objects ─► codec encode ─► v8.serialize ─► base64 ├► WireJob (BullMQ job data)
 *   worker: WireJob ─► module under --root, hash checked ─► import ─► run ─► WireResult (job return value)
 *
 * One job carries one call, one chunk of a map, or several calls ("calls") or chunks ("chunks") of
 * one function that a backlogged pool sent together: each keeps its own arguments and its own
 * outcome.
 *
 * A module travels as a path relative to the project root (the folder of the nearest package.json
 * above the program's entry script), never as a URL of this machine, so that a worker can look for
 * it under its own `--root`. The hash of the module's text lets the worker refuse code that is not
 * the same as the caller's. Values use the library's codec, so errors keep their class, fields,
 * cause and stack, and exported functions and classes inside values travel by reference too.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { deserialize, serialize } from "node:v8";
import { ProcessError, SerializationError } from "../../errors.js";
import { type CodeRef, codeRef } from "../reduction.js";
import { decodeOrImport, encode, encodeError, reduce } from "../wire/codec.js";

/** A function as a cluster job names it. */
export interface WireRef extends Omit<CodeRef, "module"> {
  /** The module's path relative to the project root, with `/` separators (undefined: by source only). */
  path: string | undefined;
  /** sha256 of the module's text (hex), checked by the worker. */
  hash: string | undefined;
}

/** The arguments of one call, or the items of one chunk, as a job carries them. */
export interface WireArgs {
  /** base64 of `v8.serialize` of the codec's encoding of the arguments. */
  args: string;
  /** Whether the encoding must be decoded (it names functions, classes, errors or library objects). */
  changed: boolean;
}

/**
 * A cluster job's data: one call, one chunk of a map-like call, or several calls or chunks of `fn`
 * (`each` says how a grouped chunk runs: `fn(item)` or `fn(...item)`).
 */
export type WireJob = {
  /** Protocol version. */
  v: 1;
  /** The submitting pool's id (the job id's prefix). */
  pool: string;
  fn: WireRef;
} & (
  | ({ mode: "call" | "map" | "star" } & WireArgs)
  | { mode: "calls"; calls: WireArgs[] }
  | { mode: "chunks"; each: "map" | "star"; calls: WireArgs[] }
);

/** A cluster job's return value: the task's value, or the error it threw (encoded the same way). */
export type WireResult = { ok: true; value: string; changed: boolean } | { ok: false; error: string };

/** The return value of a "calls" or "chunks" job: each one's outcome, in the job's order. */
export interface WireResults {
  ok: true;
  calls: WireResult[];
}

// ---------------------------------------------------------------------------------------------
// Caller side

let root: string | undefined;

/** Sets the project root (a worker's `--root`, in the worker and in its local children). */
export function setProjectRoot(dir: string): void {
  root = dir;
}

/** The project root: the folder of the nearest package.json above the entry script (or the working directory). */
export function projectRoot(): string {
  if (root) return root;
  const entry = process.argv[1] ? resolve(process.argv[1]) : join(process.cwd(), "x");
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return (root = dir);
    if (dirname(dir) === dir) return (root = process.cwd());
  }
}

const hashes = new Map<string, { mtime: number; size: number; hash: string }>();

/** sha256 of a file's text, cached until the file changes. */
export function fileHash(file: string): string {
  const stat = statSync(file);
  const cached = hashes.get(file);
  if (cached && cached.mtime === stat.mtimeMs && cached.size === stat.size) return cached.hash;
  const hash = createHash("sha256").update(readFileSync(file)).digest("hex");
  hashes.set(file, { mtime: stat.mtimeMs, size: stat.size, hash });
  return hash;
}

/** A CodeRef as a job carries it: the module relative to the project root, with its hash. */
function wireRef(ref: CodeRef): WireRef {
  const { module, ...rest } = ref;
  // a self-contained function its module does not export travels by source alone
  if (ref.source && !ref.exported) return { ...rest, path: undefined, hash: undefined };
  if (!module?.startsWith("file:")) {
    throw new ProcessError(
      `function '${ref.name}' cannot be sent to a cluster worker: its module (${module ?? "unknown"}) is not a file. ` +
        "Export it from a module of the project, or make it self-contained.",
    );
  }
  const file = fileURLToPath(module.split("?")[0]!);
  const base = projectRoot();
  const rel = relative(base, file);
  if (rel.startsWith("..") || isAbsolute(rel)) {
    throw new ProcessError(
      `function '${ref.name}' cannot be sent to a cluster worker: its module ${file} is outside the project root ${base} ` +
        "(the folder of the nearest package.json above the entry script), and workers import only from their --root. " +
        "Move the module into the project.",
    );
  }
  return { ...rest, path: rel.split(sep).join("/"), hash: fileHash(file) };
}

/** The task function as a job names it; throws at once when no worker could run it. */
export function taskRef(fn: Function): WireRef {
  return wireRef(codeRef(fn, "the task function"));
}

const TAG = "\u0000mpts"; // the codec's tag key: a value that names functions is { [TAG]: "r", refs, v }

/** Encodes arguments for a worker on another machine; SerializationError names the path of what cannot go. */
export function encodeRemote(value: unknown, path: string): { data: string; changed: boolean } {
  const encoded = encode(value, "bytes", path);
  // only library objects set `changed` without naming a function, so plain data skips this walk
  if (encoded.changed) refuseLocalObjects(value, path, new Set());
  let out = encoded.value;
  if (isWithRefs(out)) out = { ...out, refs: out.refs.map((ref) => wireRef(ref) as unknown as CodeRef) };
  return { data: serialize(out).toString("base64"), changed: encoded.changed };
}

function isWithRefs(value: unknown): value is { refs: CodeRef[] } {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[TAG] === "r";
}

const names: Record<string, string> = {
  "mpts.Queue": "a Queue",
  "mpts.Connection": "a Pipe end",
  "mpts.SemLock": "a lock or semaphore",
  "mpts.Event": "an Event",
  "mpts.Condition": "a Condition",
  "mpts.Barrier": "a Barrier",
  "mpts.Value": "a Value",
  "mpts.SharedArray": "a SharedArray",
  "mpts.SharedMemory": "a SharedMemory",
  "mpts.ShareableList": "a ShareableList",
};

/** Throws for a library object that exists only on this machine (a manager proxy over TCP may go). */
function refuseLocalObjects(value: unknown, path: string, seen: Set<object>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  const reducer = (value as { [reduce]?: (transport: "bytes") => { kind: string; state: unknown } })[reduce];
  if (typeof reducer === "function") {
    const { kind, state } = reducer.call(value, "bytes");
    if (kind === "mpts.ManagerProxy" && Array.isArray((state as { address?: unknown }).address)) return;
    const what = kind === "mpts.ManagerProxy" ? "a proxy of a manager on a local socket" : (names[kind] ?? kind);
    throw new SerializationError(
      `${path} is ${what}, which exists only on this machine, and a cluster task runs on another one. ` +
        "Share state across machines through a Manager served over TCP (Manager.start({ address: ['0.0.0.0', port], authkey })), " +
        "or pass plain data.",
    );
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) refuseLocalObjects(value[i], `${path}[${i}]`, seen);
  } else if (value instanceof Map) {
    for (const [k, v] of value) refuseLocalObjects(v, `${path}.get(${JSON.stringify(k)})`, seen);
  } else if (value instanceof Set) {
    for (const v of value) refuseLocalObjects(v, `${path} (a Set item)`, seen);
  } else if (!ArrayBuffer.isView(value) && !(value instanceof Error)) {
    for (const key of Object.keys(value))
      refuseLocalObjects((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
  }
}

/** Reads a job's return value on the caller's side. */
export async function readResult(
  result: WireResult,
): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
  if (result.ok) {
    const value = deserialize(Buffer.from(result.value, "base64"));
    return { ok: true, value: result.changed ? await decodeOrImport(localRefs(value, projectRoot())) : value };
  }
  return {
    ok: false,
    error: await decodeOrImport(localRefs(deserialize(Buffer.from(result.error, "base64")), projectRoot())),
  };
}

// ---------------------------------------------------------------------------------------------
// Both sides

/**
 * The hash of each module file as this process first checked it, which is the text it imports: an
 * ES module is loaded once, so a file edited later still runs as it was.
 */
const loaded = new Map<string, string>();

/**
 * A WireRef as a CodeRef of this machine: its module under `base`, after checking the hash against
 * the text this process runs (the file's, the first time).
 */
export function localRef(ref: WireRef, base: string): CodeRef {
  const { path, hash, ...rest } = ref;
  if (path === undefined) return { ...rest, module: undefined };
  if (isAbsolute(path) || path.split("/").includes("..")) {
    throw new ProcessError(
      `a cluster job named the module ${JSON.stringify(path)}, which is outside this worker's root: refused`,
    );
  }
  const file = join(base, ...path.split("/"));
  const module = pathToFileURL(file).href;
  const runs = loaded.get(file);
  if (runs !== undefined && (hash === undefined || hash === runs)) return { ...rest, module };
  if (runs !== undefined) {
    throw new ProcessError(
      `this worker runs ${file} as it was when it first loaded it, which differs from the caller's ${path} (for function '${ref.name}'): deploy the same code on the caller and every worker, and restart workers whose code changed since they started`,
    );
  }
  if (!existsSync(file)) {
    throw new ProcessError(
      `${path} (for function '${ref.name}') is not under ${base}: deploy the same code on every machine, and start the worker with --root set to the project's folder`,
    );
  }
  const text = fileHash(file);
  if (hash !== undefined && text !== hash) {
    throw new ProcessError(
      `${file} differs from the caller's ${path} (for function '${ref.name}'): deploy the same code on the caller and every worker`,
    );
  }
  loaded.set(file, text);
  return { ...rest, module };
}

/** The module paths of the functions an encoded value names, made local to `base`. */
export function localRefs(value: unknown, base: string): unknown {
  if (!isWithRefs(value)) return value;
  return { ...value, refs: value.refs.map((ref) => localRef(ref as unknown as WireRef, base)) };
}

/** A task's outcome as a job's return value. */
export function wireOutcome(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): WireResult {
  if (outcome.ok) {
    try {
      const { data, changed } = encodeRemote(outcome.value, "the result");
      return { ok: true, value: data, changed };
    } catch (error) {
      return wireOutcome({ ok: false, error });
    }
  }
  let out = encodeError(outcome.error, "bytes");
  if (isWithRefs(out)) out = { ...out, refs: out.refs.map((ref) => wireRefOrSource(ref) as unknown as CodeRef) };
  return { ok: false, error: serialize(out).toString("base64") };
}

function wireRefOrSource(ref: CodeRef): WireRef {
  try {
    return wireRef(ref);
  } catch {
    return { ...ref, path: undefined, hash: undefined };
  }
}
