/**
 * A "spawn" child dies with its parent even while a task keeps its event loop busy. The end of file
 * on the parent's channel (entries/spawn-child.ts) is the graceful way out, but a child in a CPU-bound loop
 * never reads it, and would run on, reparented to init, until its loop ends (forever, for a bug).
 * So the child's death does not depend on its event loop:
 *
 *   - with the native addon (Linux), the kernel kills it: PR_SET_PDEATHSIG sends SIGKILL when the
 *     thread that spawned it ends. Node spawns from the thread that calls `child_process.spawn`: the
 *     parent's main thread, whose end is the process's, or a worker thread, whose children close
 *     their channels when it ends anyway;
 *   - without it, a watchdog thread, whose event loop is its own, polls the parent's pid and kills
 *     the process once it changes (the child was handed to another parent: its own is gone).
 *
 * Both compare with the pid the parent passed on: a parent that died before the child asked has
 * already handed it to another one.
 */
import { Worker } from "node:worker_threads";
import { loadNative } from "../internal/shm/native.js";

/** How often the watchdog looks at the parent's pid: a dead parent's child dies within this. */
const watchdogIntervalMs = 200;

let online: Promise<void> = Promise.resolve();

/**
 * Resolves once the watch is in force: at once with the addon, once the watchdog thread runs
 * without it. A child awaits it before running anything of the program's, so that a task that
 * keeps this thread busy from its first instruction cannot starve a watchdog still starting.
 */
export function parentWatchReady(): Promise<void> {
  return online;
}

/**
 * Makes this process die when `parentPid`, its parent, ends, whatever this process is doing then.
 * Returns false when the parent is already gone (the caller exits).
 */
export function dieWithParent(parentPid: number): boolean {
  const native = loadNative();
  if (native?.dieWithParent) return native.dieWithParent(parentPid);
  if (process.ppid !== parentPid) return false;
  // The thread runs no module code (no loader, no preloads: execArgv is empty) and is unref'd, so it
  // neither slows the start much nor keeps the child alive.
  const watchdog = new Worker(
    `setInterval(() => { if (process.ppid !== ${parentPid}) process.kill(process.pid, "SIGKILL"); }, ${watchdogIntervalMs});`,
    { eval: true, execArgv: [], stdout: true, stderr: true },
  );
  watchdog.on("error", (error) => {
    process.stderr.write(`multiprocessing-ts: the parent watchdog stopped: ${error.message}\n`);
  });
  // held until it runs (the child awaits that with nothing else keeping its event loop alive), then
  // let go: it must not keep the child alive
  online = new Promise((resolve) => {
    const ready = () => {
      watchdog.unref();
      resolve();
    };
    watchdog.once("online", ready);
    watchdog.once("error", ready);
  });
  return true;
}
