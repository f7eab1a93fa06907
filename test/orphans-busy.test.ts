// No child outlives its parent even while it runs synchronous code: a pool worker, an executor
// worker, a daemon and a non-daemon Process, each in a loop that never lets its event loop run (so
// it never reads the end of its channel), die with their parent however it ends, with or without
// the addon (the children of this run inherit MULTIPROCESSING_TS_NO_NATIVE). "end": the program
// ends by itself (only a daemon can be busy then); "exit": process.exit(3); "throw": an uncaught
// error. A thread dies with its process: the thread runs check that the program still ends.
import assert from "node:assert/strict";
import { test } from "node:test";
import { alive, gone, runScript } from "./helpers.ts";

type End = "SIGKILL" | "SIGTERM" | "SIGINT" | "SIGHUP" | "exit" | "throw" | "end";
const expectedCode: Partial<Record<End, number>> = { SIGINT: 130, exit: 3, throw: 1, end: 0 };
const noAddon = process.env.MULTIPROCESSING_TS_NO_NATIVE === "1";
const runs: Array<{ method: "spawn" | "thread"; ends: End[] }> = noAddon
  ? // the watchdog thread (orphans-busy-fallback.test.ts); SIGHUP and the program's own end take the
    // same ways as SIGTERM and exit
    [{ method: "spawn", ends: ["SIGKILL", "SIGTERM", "SIGINT", "exit", "throw"] }]
  : [
      { method: "spawn", ends: ["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "exit", "throw", "end"] },
      { method: "thread", ends: ["SIGINT", "exit"] },
    ];

for (const { method, ends } of runs) {
  for (const end of ends) {
    const label = `${method}${noAddon ? ", without the addon" : ""}`;
    test(`children busy in a loop go within 2 s when the parent ends by ${end} (${label})`, {
      timeout: 60_000,
    }, async () => {
      const pids = new Map<string, number>();
      const want = end === "end" ? 1 : 4;
      const result = await runScript("./fixtures/spinners.ts", [end, method], (line, kill) => {
        const [kind, pid] = line.split(" ");
        if (!["worker", "executor", "daemon", "child"].includes(kind!)) return;
        pids.set(kind!, Number(pid));
        if (pids.size === want) kill(end.startsWith("SIG") ? (end as NodeJS.Signals) : "SIGUSR2");
      });
      try {
        assert.equal(pids.size, want, `every child started busy: ${result.stderr}`);
        if (end in expectedCode) assert.equal(result.code, expectedCode[end], result.stderr);
        else assert.equal(result.signal, end);
        for (const [kind, pid] of pids) {
          assert.ok(await gone(pid, 2000), `the ${kind} (pid ${pid}) outlived its parent (${end}, ${label})`);
        }
      } finally {
        // an orphan would burn a core for ever
        if (method === "spawn") for (const pid of pids.values()) if (alive(pid)) process.kill(pid, "SIGKILL");
      }
    });
  }
}
