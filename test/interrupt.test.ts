// Ctrl-C in a long-running program (a server holds its event loop) that uses a pool. Without a
// SIGINT listener of its own, the program ends at once with code 130, as it would without the
// library, its pool stopped. With one, the program decides: its handler runs with the pool usable.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gone, methods, runScript } from "./helpers.ts";

for (const method of methods) {
  test(`Ctrl-C ends a program without a SIGINT listener at once, with code 130 (${method})`, {
    timeout: 60_000,
  }, async () => {
    const pids: number[] = [];
    const result = await runScript(
      "./fixtures/interrupted.ts",
      [method, "none"],
      (line, kill) => {
        if (line.startsWith("worker ")) pids.push(Number(line.split(" ")[1]));
        if (line === "ready") kill("SIGINT");
      },
      30_000,
    );
    assert.notEqual(result.signal, "SIGKILL", "the program kept running after Ctrl-C");
    assert.equal(result.code, 130, result.stderr);
    assert.ok(pids.length > 0);
    for (const pid of pids) assert.ok(await gone(pid, 2000), `worker ${pid} outlived the program`);
  });

  test(`Ctrl-C leaves a program with its own SIGINT listener to it, its pool still usable (${method})`, {
    timeout: 60_000,
  }, async () => {
    const pids: number[] = [];
    const result = await runScript(
      "./fixtures/interrupted.ts",
      [method, "own"],
      (line, kill) => {
        if (line.startsWith("worker ")) pids.push(Number(line.split(" ")[1]));
        if (line === "ready") kill("SIGINT");
      },
      30_000,
    );
    assert.match(result.stdout, /after Ctrl-C: 49/, result.stderr);
    assert.equal(result.code, 0, "the program ended as its handler decided");
    for (const pid of pids) assert.ok(await gone(pid, 2000), `worker ${pid} outlived the program`);
  });
}
