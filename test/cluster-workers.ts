// Starting and stopping real `multiprocessing-ts worker` commands for the cluster suites. Each
// worker is told to die with this test process (MULTIPROCESSING_TS_WORKER_PARENT), so none
// outlives the test runner, even when the runner is killed.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
export const cli = join(root, "dist", "cli.js");

/** The argv of a worker command on `url` with --root the project, two spawn children and a 1 s lock. */
export function workerArgs(url: string, extra: string[] = []): string[] {
  return [
    "--import",
    import.meta.resolve("tsx"),
    cli,
    "worker",
    "--connect",
    url,
    "--root",
    root,
    "--processes",
    "2",
    "--context",
    "spawn",
    "--lock-ms",
    "1000",
    ...extra,
  ];
}

/** Resolves once `child`, a worker command, printed its connected line; rejects if it exits first or within 30 s. */
export function connected(child: ChildProcess): Promise<ChildProcess> {
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  return new Promise<ChildProcess>((resolve, reject) => {
    let out = "";
    const guard = setTimeout(() => reject(new Error(`the worker did not connect in 30 s: ${stderr}`)), 30_000);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("connected to")) {
        clearTimeout(guard);
        resolve(child);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(guard);
      reject(new Error(`the worker exited with ${code}: ${stderr}`));
    });
  });
}

/** A running `multiprocessing-ts worker` in `cwd`, resolved once connected; it dies with this process. */
export function startWorker(url: string, cwd: string, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, workerArgs(url, extra), {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MULTIPROCESSING_TS_WORKER_PARENT: String(process.pid) },
  });
  return connected(child);
}

/** Stops a worker with `signal` and resolves with its exit code. */
export function stopWorker(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill(signal);
  });
}

/** The pools a test suite owns: `own(pool)` records one and returns it; `disposeAll()` (in `after`) disposes each. */
export function ownedPools(): { own<T extends AsyncDisposable>(pool: T): T; disposeAll(): Promise<unknown> } {
  const pools: AsyncDisposable[] = [];
  return {
    own(pool) {
      pools.push(pool);
      return pool;
    },
    disposeAll: () => Promise.allSettled(pools.map((pool) => pool[Symbol.asyncDispose]())),
  };
}
