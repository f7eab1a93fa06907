/**
 * The peer pools the suites compare with, started one way for every suite: each throws a message
 * that becomes its row's reason when the peer cannot run here (not installed, or its worker script
 * missing from an installed package).
 */
import { existsSync } from "node:fs";
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

/** A piscina pool of WORKERS threads over ./workers/peer-task.js. */
export async function startPiscina(): Promise<any> {
  const mod = await optional<{ default: new (o: object) => any }>("piscina");
  if (!mod) throw new Error("not installed");
  return new mod.default({ filename: here("./workers/peer-task.js"), minThreads: WORKERS, maxThreads: WORKERS });
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
