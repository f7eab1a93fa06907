/**
 * Whether a process still runs. `kill(pid, 0)` alone says whether the pid is taken, and a process
 * that has ended keeps its pid as a zombie until its parent reaps it. An orphan's parent is init,
 * which may reap seconds later (some container and VM inits poll), so a lock owner or a pipe end's
 * holder that was killed would count as alive for that long. On Linux the process's state in
 * /proc tells a zombie from a process that runs.
 */
import { readFileSync } from "node:fs";

/** True while process `pid` exists and has not ended (EPERM: it runs, under another user). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  return !isZombie(pid);
}

/** True when `pid` has ended and waits to be reaped ("Z"), or is being reaped ("X"); Linux only. */
function isZombie(pid: number): boolean {
  if (process.platform !== "linux") return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return false;
  }
  // "pid (comm) S …": the name may hold spaces and parentheses, the state follows the last ")"
  const state = stat[stat.lastIndexOf(")") + 2];
  return state === "Z" || state === "X";
}
