// A process that has ended keeps its pid as a zombie until its parent reaps it, and an orphan's
// parent is init, which on some machines reaps seconds later. The library's liveness checks (a lock's
// owner, a pipe end's holder, a shared-memory block's creator) and the tests' own count it as ended.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { test } from "node:test";
import { processRuns } from "../src/internal/pids.ts";

const pause = () => new Promise((resolve) => setTimeout(resolve, 10));

function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  return stat[stat.lastIndexOf(")") + 2]!;
}

test("a process that has ended and waits to be reaped does not count as running", {
  timeout: 20_000,
  skip: process.platform !== "linux" && "zombies are told apart through /proc, on Linux only",
}, async () => {
  // The shell starts a child that waits for a file, then becomes a sleep, which never reaps. The file
  // is made only once the shell has become the sleep, so the shell cannot reap the child itself.
  const dir = mkdtempSync(join(tmpdir(), "mpts-zombie-"));
  const go = join(dir, "go");
  const holder = spawn("sh", ["-c", `(while [ ! -e '${go}' ]; do sleep 0.01; done) & echo $!; exec sleep 60`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const [line] = (await once(holder.stdout!, "data")) as [Buffer];
    const pid = Number(line.toString().trim());
    while (!readFileSync(`/proc/${holder.pid}/cmdline`, "latin1").startsWith("sleep\0")) await pause();
    writeFileSync(go, "");
    while (state(pid) !== "Z") await pause();
    assert.doesNotThrow(() => process.kill(pid, 0), "the zombie still holds its pid");
    assert.equal(processRuns(pid), false, "a zombie does not run");
    assert.equal(processRuns(holder.pid!), true, "its parent runs");
  } finally {
    holder.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
  await once(holder, "exit");
  assert.equal(processRuns(holder.pid!), false, "a reaped process is gone");
});
