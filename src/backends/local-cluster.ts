/**
 * A cluster on this machine, for `demo --cluster` and the bench's cluster suite: a private
 * redis-server on a Unix socket in a temporary folder and `multiprocessing-ts worker` commands
 * serving it, each started by this process and stopped by its pid.
 *
 *   startLocalCluster() ─► redis-server (daemonized, pidfile) ─► N × worker --connect unix://… --root <project>
 *                       ◄─ { url, pids, stop() }       Ctrl-C / SIGTERM ─► stop() ─► exit 130 / 143
 *
 * Here, under src/backends/, because it launches processes; the command-line tools take it from
 * tools.ts. The workers die with this process even when it is killed (MULTIPROCESSING_TS_WORKER_PARENT);
 * the server is stopped by `stop()`, which a SIGINT or SIGTERM of this process runs too.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { projectRoot } from "../internal/cluster/protocol.js";
import { findRedisServer, startRedisServer } from "./redis-server.js";

/** What to say when redis-server is missing: how to install it, and that nothing was started. */
export const NO_REDIS_SERVER =
  "redis-server is not installed, so there is no local cluster to try: install it " +
  "(Debian/Ubuntu: sudo apt-get install redis-server; Fedora: sudo dnf install redis; macOS: brew install redis) and run this again";

/** A running local cluster. */
export interface LocalCluster {
  /** The server's `unix://` URL, for `new Pool({ cluster: url })`. */
  readonly url: string;
  /** The server's Unix socket. */
  readonly socket: string;
  /** The redis-server's pid. */
  readonly serverPid: number;
  /** The worker commands' pids. */
  readonly workerPids: readonly number[];
  /** Stops the workers (SIGTERM, then SIGKILL after 5 s) and the server, by their pids; idempotent. */
  stop(): Promise<void>;
}

/** The command line's entry and the arguments that run it under this process's runtime and loader. */
function cliArgs(): string[] {
  const ts = import.meta.url.endsWith(".ts");
  return [...process.execArgv, fileURLToPath(new URL(ts ? "../cli.ts" : "../cli.js", import.meta.url))];
}

/**
 * Starts a redis-server and `workers` worker commands of `processes` local processes each; rejects
 * (with everything it started stopped) when one of them does not come up. Throws
 * {@link NO_REDIS_SERVER} when redis-server is not installed.
 */
export async function startLocalCluster(options: {
  workers: number;
  processes: number;
  /** Extra flags for every worker, e.g. ["--lock-ms", "1000"]. */
  flags?: string[];
}): Promise<LocalCluster> {
  if (!findRedisServer()) throw new Error(NO_REDIS_SERVER);
  const server = await startRedisServer();
  const children: ChildProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all(children.map(stopChild));
      await server.stop();
    })());
  try {
    for (let i = 0; i < options.workers; i++) {
      const child = spawn(
        process.execPath,
        [
          ...cliArgs(),
          "worker",
          "--connect",
          server.url,
          // the folder this process's task modules are named relative to
          "--root",
          projectRoot(),
          "--processes",
          String(options.processes),
          ...(options.flags ?? []),
        ],
        {
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, MULTIPROCESSING_TS_WORKER_PARENT: String(process.pid) },
        },
      );
      children.push(child);
    }
    await Promise.all(children.map(connected));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: server.url,
    socket: server.socket!,
    serverPid: server.pid,
    workerPids: children.map((c) => c.pid!),
    stop,
  };
}

/** Resolves once a worker printed its connected line; rejects with its stderr if it exits first or within 60 s. */
function connected(child: ChildProcess): Promise<void> {
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new Error(`a cluster worker ${why}:\n${err.trim()}`));
    const guard = setTimeout(() => fail("did not connect within 60 s"), 60_000);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("connected to")) {
        clearTimeout(guard);
        // read on, unshown, so that a full pipe never blocks the worker
        child.stdout!.resume();
        resolve();
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(guard);
      fail(`exited (${signal ?? `code ${code}`}) before it connected`);
    });
    child.once("error", (error) => {
      clearTimeout(guard);
      reject(error);
    });
  });
}

/** SIGTERM (the worker finishes its jobs), SIGKILL after 5 s; resolves once the child is gone. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Runs `stop` when this process gets SIGINT (Ctrl-C) or SIGTERM, then exits with 130 or 143; a
 * second signal exits at once. Returns the function that removes the handlers.
 */
export function stopOnSignal(stop: () => Promise<void>, say: (text: string) => void): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = signal === "SIGINT" ? 130 : 143;
    if (stopping) process.exit(code);
    stopping = true;
    say(`\n${signal}: stopping the cluster workers and redis-server`);
    stop().finally(() => process.exit(code));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}
