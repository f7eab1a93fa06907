// Shared test helpers: run a suite under each start method, and run a script as a separate program.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { getAllStartMethods } from "multiprocessing-ts";
import { processRuns } from "../src/internal/pids.ts";

export type Method = "spawn" | "thread";
/**
 * The start methods a suite runs under, as the library lists them: only "spawn" when the addon is
 * switched off (the fallback run).
 */
export const methods: readonly Method[] =
  process.env.MULTIPROCESSING_TS_NO_NATIVE === "1" ? ["spawn"] : getAllStartMethods();

/** Runs `script` (a path relative to test/) as its own program; resolves to its output and exit code. */
export function runScript(
  script: string,
  args: string[] = [],
  onLine?: (line: string, kill: (signal: NodeJS.Signals) => void) => void,
  timeoutMs = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, path, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let buffered = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
    buffered += chunk;
    let i: number;
    while ((i = buffered.indexOf("\n")) >= 0) {
      onLine?.(buffered.slice(0, i), (signal) => child.kill(signal));
      buffered = buffered.slice(i + 1);
    }
  });
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const guard = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

/** True while `pid` runs: a killed orphan that init has not reaped yet is a zombie, not a child left behind. */
export function alive(pid: number): boolean {
  return processRuns(pid);
}

/** Resolves true once `pid` is gone, false if it is still there after `ms`. */
export async function gone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return !alive(pid);
}

/** The lines a terminal shows for `output`: "\r" moves back to the start of the line, later text overwrites. */
export function shownLines(output: string): string[] {
  return output.split(/\r?\n/).map((line) => {
    const cells: string[] = [];
    let at = 0;
    for (const ch of line) {
      if (ch === "\r") at = 0;
      else cells[at++] = ch;
    }
    return cells.join("").trimEnd();
  });
}
