/**
 * Per-process (per-thread, in the thread start method) state of the library: who this process is,
 * whether it is a worker still importing user code, and which start method is the default.
 *
 * Kept on a global symbol so that two copies of the library loaded in one process (say, from two
 * `node_modules` folders) agree on it.
 */
import { realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread } from "./identity.js";

/** The start methods Node.js can offer. */
export type StartMethod = "spawn" | "thread";

/** Which memory a start method's children can share with their parent. */
export type SharedMemoryKind = "sab" | "shm";

/**
 * How the bytes travel: `clone` (postMessage: SharedArrayBuffer allowed), `bytes` (v8.serialize, to
 * any process), or `local` (v8.serialize, to a thread of this process: SharedArrayBuffers travel
 * beside the bytes, in `Encoded.shared`).
 */
export type Transport = "clone" | "bytes" | "local";

/** How the current process sees itself and its parent. */
export interface RuntimeState {
  /** True in a process or thread started by this library. */
  child: boolean;
  /** True while a worker imports the module that defines its task (creating processes then is a fork bomb). */
  bootstrapping: boolean;
  name: string;
  daemon: boolean;
  parent: { name: string; pid: number } | null;
  /** The default start method, once chosen by `setStartMethod` or inherited from the parent. */
  startMethod: StartMethod | undefined;
  /** Counter for default child names: `Process-1`, `Process-2`, ... */
  childCounter: number;
  /** Run, in order, before a child exits on its own: join children, flush queues. */
  beforeExit: Array<() => unknown>;
}

const key = Symbol.for("multiprocessing-ts.runtime");
const slot = globalThis as unknown as { [key]?: RuntimeState };
export const runtime: RuntimeState = (slot[key] ??= {
  child: false,
  bootstrapping: false,
  name: "MainProcess",
  daemon: false,
  parent: null,
  startMethod: undefined,
  childCounter: 0,
  beforeExit: [],
});

/** Runs the `beforeExit` hooks (each at most once), as a child does before it exits. */
export async function runBeforeExit(): Promise<void> {
  const hooks = runtime.beforeExit.splice(0);
  for (const hook of hooks) {
    try {
      await hook();
    } catch (error) {
      process.stderr.write(`multiprocessing-ts: ${(error as Error)?.stack ?? String(error)}\n`);
    }
  }
}

/**
 * True only in the process that ran `meta`'s module as its entry script: the equivalent of Python's
 * `if __name__ == "__main__":`. Guard program code with it, because workers import the module that
 * defines their task:
 *
 * ```ts
 * export function square(x: number) { return x * x; }
 * if (isMain(import.meta)) { console.log(await pool.map(square, [1, 2, 3])); }
 * ```
 */
export function isMain(meta: ImportMeta): boolean {
  const native = (meta as ImportMeta & { main?: unknown }).main;
  if (typeof native === "boolean") return native && !runtime.child;
  if (runtime.child || !isMainThread) return false;
  const entry = process.argv[1];
  if (!entry || !meta?.url?.startsWith("file:")) return false;
  return samePath(fileURLToPath(meta.url), entryFile(entry));
}

let entryFiles: { entry: string; file: string } | undefined;

/**
 * The file Node ran for the entry `argv[1]`. Node finds it as `require.resolve` does, so
 * `node dist/primes` runs `dist/primes.js`, `tsx src/primes` runs `src/primes.ts` (tsx adds its
 * extensions to that search) and `node dist` runs `dist/index.js`.
 */
function entryFile(entry: string): string {
  if (entryFiles?.entry !== entry) {
    const path = resolve(entry);
    let file = path;
    try {
      file = createRequire(path).resolve(path);
    } catch {
      // not a path Node could resolve either: compare it as given
    }
    entryFiles = { entry, file };
  }
  return entryFiles.file;
}

function samePath(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
