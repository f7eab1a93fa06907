/**
 * The peer pools the suites compare with, started one way for every suite: each throws a message
 * that becomes its row's reason when the peer cannot run here (not installed, or its worker script
 * missing from an installed package).
 */
import { existsSync } from "node:fs";
import type { Worker } from "node:worker_threads";
import { fileURLToPath } from "node:url";

/** Workers in every pool of the bench, ours and the peers'. */
export const WORKERS = 2;

/** A file next to this one (the peers' worker scripts are in ./workers/). */
export const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** The package `name`, or undefined when it is not installed. */
export async function optional<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T;
  } catch {
    return undefined;
  }
}

/**
 * A piscina pool of WORKERS threads over ./workers/peer-task.js. Its `destroy()` waits until every
 * worker has loaded that module: piscina's workers load it with `require()`, and on Node.js 20 and
 * 22 a worker terminated inside `require()` of an ES module aborts the whole process (an assertion
 * in `CreateRequiredModuleFacade`), as a pool destroyed at its first result would do to the worker
 * that has not answered yet. (Keeping them off `require(esm)` would avoid it too, but piscina starts
 * 7–12% slower on its `import()` path, and the startup suite measures it as users run it.)
 */
export async function startPiscina(): Promise<{
  run(arg: unknown, options: object): Promise<unknown>;
  destroy(): Promise<void>;
}> {
  const mod = await optional<{ default: new (o: object) => any }>("piscina");
  if (!mod) throw new Error("not installed");
  const pool = new mod.default({ filename: here("./workers/peer-task.js"), minThreads: WORKERS, maxThreads: WORKERS });
  // each worker posts { _WORKER_READY: true } once the module has loaded (or exits trying)
  const loaded = Promise.all(
    (pool.threads as Worker[]).map(
      (worker) =>
        new Promise<void>((resolve) => {
          const ready = (message: unknown) => {
            if (typeof message === "object" && message !== null && "_WORKER_READY" in message) done();
          };
          const done = () => {
            worker.off("message", ready).off("exit", done);
            resolve();
          };
          worker.on("message", ready).on("exit", done);
        }),
    ),
  );
  return {
    run: (arg, options) => pool.run(arg, options),
    destroy: async () => {
      await loaded;
      await pool.destroy();
    },
  };
}

/** A workerpool pool of WORKERS workers of `workerType` over ./workers/workerpool-task.js. */
export async function startWorkerpool(workerType: "thread" | "process"): Promise<any> {
  const mod = await optional<{ default: { pool(script: string, o: object): any } }>("workerpool");
  if (!mod) throw new Error("not installed");
  // the package does not ship this worker script: it imports workerpool, a dev dependency
  const script = here("./workers/workerpool-task.js");
  if (!existsSync(script)) throw new Error("its worker script is not installed");
  return mod.default.pool(script, { minWorkers: WORKERS, maxWorkers: WORKERS, workerType });
}
