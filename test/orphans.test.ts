// No child outlives its parent: daemons die when the parent exits, and every child goes when the
// parent is killed, even with SIGKILL.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gone, runScript } from "./helpers.ts";

test("a daemon is stopped when its parent exits normally", { timeout: 60_000 }, async () => {
  let daemon = 0;
  const { code } = await runScript("./fixtures/family.ts", ["spawn", "exit"], (line) => {
    if (line.startsWith("daemon ")) daemon = Number(line.split(" ")[1]);
  });
  assert.equal(code, 0);
  assert.ok(daemon > 0);
  assert.ok(await gone(daemon, 5000), "the daemon died with its parent");
});

for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
  test(`every child goes when the parent gets ${signal}`, { timeout: 60_000 }, async () => {
    const pids: number[] = [];
    await runScript("./fixtures/family.ts", ["spawn", "wait"], (line, kill) => {
      const [kind, pid] = line.split(" ");
      if (kind === "daemon" || kind === "child") pids.push(Number(pid));
      if (kind === "child") kill(signal);
    });
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.ok(await gone(pid, 2000), `child ${pid} outlived its parent (${signal})`);
  });
}

for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
  test(`a pool's workers and a loose child go within 2 s when the parent gets ${signal}`, {
    timeout: 60_000,
  }, async () => {
    const pids: number[] = [];
    const result = await runScript("./fixtures/family.ts", ["spawn", "pool"], (line, kill) => {
      const [kind, pid] = line.split(" ");
      if (kind === "daemon" || kind === "child" || kind === "worker") pids.push(Number(pid));
      if (kind === "busy") kill(signal);
    });
    assert.equal(pids.length, 4);
    for (const pid of pids) assert.ok(await gone(pid, 2000), `process ${pid} outlived its parent (${signal})`);
    if (signal === "SIGINT") {
      assert.match(result.stdout, /work rejected: AbortError/, "Ctrl-C rejects pending work with an AbortError");
      assert.equal(result.code, 130, "and the program ends with the code of an interrupt");
    }
  });
}

for (const method of ["spawn", "thread"]) {
  test(`a non-daemon child is waited for when the program ends (${method})`, { timeout: 60_000 }, async () => {
    const { code, stdout } = await runScript("./fixtures/family.ts", [method, "nojoin"]);
    assert.equal(code, 0);
    assert.match(stdout, /main done[\s\S]*child done/);
  });
}
