/**
 * CPython's side of the suites that compare with it: a script run by python3, and why it gave no
 * figures when it did not (python3 missing, killed, or failed), in words for the rows.
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Runs a Python program (written to a temporary file, removed afterwards) with `args`; it is
 * killed after `timeout` ms (default 300 s).
 */
export function runPython(program: string, args: string[], timeout = 300_000): SpawnSyncReturns<string> {
  const dir = mkdtempSync(join(tmpdir(), "mpts-bench-"));
  const script = join(dir, "bench.py");
  try {
    writeFileSync(script, program);
    return spawnSync("python3", [script, ...args], { encoding: "utf8", timeout, maxBuffer: 64 * 1024 * 1024 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Why a run of `runPython` gave no figures, in words; undefined when it exited with 0. */
export function pythonFailure(result: SpawnSyncReturns<string>): string | undefined {
  const error = result.error as NodeJS.ErrnoException | undefined;
  if (error?.code === "ENOENT") return "python3 is not installed";
  if (error?.code === "ETIMEDOUT") return "CPython's script took longer than its time limit: killed";
  if (error) return `python3 could not run: ${error.message}`;
  if (result.status === 0) return undefined;
  const last = result.stderr.trim().split("\n").pop();
  return `CPython's script exited with ${result.status ?? result.signal}${last ? `: ${last}` : ""}`;
}
