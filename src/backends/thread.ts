/**
 * The "thread" start method: every child is a `worker_threads` Worker with its own V8 isolate and
 * heap. Exit codes follow the spawn method's convention: a terminated thread reports -15, a killed
 * one -9, although Node stops both the same way.
 *
 * On Node 20, tsx does not register its loader in worker threads by itself, so a worker started
 * under tsx registers it (from `tsx/esm/api`) before it imports any user module.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { ToParent } from "../internal/wire.js";
import { launchEnvironment } from "./environment.js";
import type { Backend, ChildExit, LaunchOptions, RunningChild } from "./backend.js";

const entry = new URL("./thread-entry.js", import.meta.url);

export const threadBackend: Backend = {
  method: "thread",
  transport: "clone",
  launch(options: LaunchOptions): RunningChild {
    const loader = tsxLoader();
    const workerOptions = {
      workerData: { boot: options.boot, tsx: loader.api, execArgv: launchEnvironment.execArgv },
      stdout: false,
      stderr: false,
      resourceLimits: options.maxHeapMb ? { maxOldGenerationSizeMb: options.maxHeapMb } : undefined,
    };
    let worker: Worker;
    try {
      worker = new Worker(entry, { ...workerOptions, execArgv: loader.execArgv });
    } catch (error) {
      if ((error as { code?: string }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw error;
      worker = new Worker(entry, { ...workerOptions, execArgv: [] });
    }
    let intent: number | undefined;
    let exit: ChildExit | undefined;
    const exited = new Promise<ChildExit>((resolve) => {
      worker.on("exit", (code) => {
        exit = { exitcode: intent ?? code, signal: intent === -9 ? "SIGKILL" : intent === -15 ? "SIGTERM" : null };
        resolve(exit);
      });
    });
    worker.on("error", (error) => {
      // an error thrown outside the child's own handlers (e.g. in a timer), or out of memory
      process.stderr.write(`${error?.stack ?? String(error)}\n`);
    });
    const handle: RunningChild = {
      pid: process.pid,
      send(message, transfer) {
        if (!exit) worker.postMessage(message, transfer as never);
      },
      onMessage: () => {},
      exited,
      terminate() {
        if (exit) return;
        intent ??= -15;
        void worker.terminate();
      },
      kill() {
        if (exit) return;
        intent ??= -9;
        void worker.terminate();
      },
      unref() {
        worker.unref();
      },
      ref() {
        worker.ref();
      },
    };
    worker.on("message", (message) => handle.onMessage(message as ToParent));
    return handle;
  },
};

interface Loader {
  /** URL of tsx's ESM API module, whose register() a worker calls first; undefined without tsx. */
  api: string | undefined;
  /** The parent's execArgv without tsx's own flags (the worker registers tsx itself). */
  execArgv: string[];
}

let cachedLoader: Loader | undefined;

function tsxLoader(): Loader {
  if (cachedLoader) return cachedLoader;
  const argv = launchEnvironment.execArgv;
  const execArgv: string[] = [];
  let tsxSpec: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--(import|require|loader|experimental-loader)(?:=(.*))?$/.exec(arg);
    if (m) {
      const value = m[2] ?? argv[i + 1] ?? "";
      if (m[2] === undefined) i++;
      // Preloads are not passed on: the worker sets itself up (and registers tsx, if used).
      if (/(^|[/\\])tsx([/\\]|$)/.test(value) || value === "tsx" || value.startsWith("tsx/")) tsxSpec ??= value;
      continue;
    }
    execArgv.push(arg);
  }
  if (launchEnvironment.tsxApi === undefined)
    launchEnvironment.tsxApi = tsxSpec ? (resolveTsxApi(tsxSpec) ?? null) : null;
  cachedLoader = { api: launchEnvironment.tsxApi ?? undefined, execArgv };
  return cachedLoader;
}

function resolveTsxApi(spec: string): string | undefined {
  try {
    let pkgJson: string;
    const path = spec.startsWith("file:") ? new URL(spec).pathname : spec;
    const at = path.lastIndexOf("/tsx/");
    if (at >= 0) pkgJson = join(path.slice(0, at + 5), "package.json");
    else pkgJson = createRequire(join(process.cwd(), "noop.js")).resolve("tsx/package.json");
    const pkg = JSON.parse(readFileSync(pkgJson, "utf8")) as {
      exports: Record<string, { import?: { default?: string } | string }>;
    };
    const api = pkg.exports["./esm/api"]?.import;
    const rel = typeof api === "string" ? api : api?.default;
    return rel ? pathToFileURL(join(pkgJson, "..", rel)).href : undefined;
  } catch {
    return undefined;
  }
}
