// A program with a cluster pool exits on its own after terminate(), against a real redis-server:
// when the pool is terminated while it is still connecting (no connection is left open), and when
// its server was lost before terminate().
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startWorker, stopWorker } from "./cluster-workers.ts";
import { type RedisServer, redisUnavailable, startRedis } from "./redis.ts";

const skip = redisUnavailable();
const fixture = fileURLToPath(new URL("./fixtures/cluster-exit.ts", import.meta.url));

/** Runs the fixture in `mode`; `onReady` runs when it prints "ready", with its stdin. */
function run(mode: string, url: string, onReady?: (child: ChildProcess) => void) {
  const child = spawn(process.execPath, [...process.execArgv, fixture, mode, url], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
    if (onReady && stdout.includes("ready")) {
      const ready = onReady;
      onReady = undefined;
      ready(child);
    }
  });
  child.stderr.on("data", (d) => (stderr += d));
  // a program that does not exit is the failure: killed after 60 s, reported with its output
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) =>
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

describe("cluster pool: the program exits after terminate()", { skip, timeout: 120_000 }, () => {
  let server: RedisServer;
  let cwd: string;

  before(async () => {
    server = await startRedis();
    cwd = mkdtempSync(join(tmpdir(), "mpts-cluster-exit-"));
  });

  after(async () => {
    await server?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  test("terminated while still connecting: no connection is left open", async () => {
    const { code, signal, stdout, stderr } = await run("connecting", server.url);
    assert.equal(signal, null, `the program did not exit: ${stdout}${stderr}`);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /terminated/);
  });

  test("its Redis server was lost: terminate() and the program ends", async () => {
    const lost = await startRedis();
    const worker = await startWorker(lost.url, cwd, ["--processes", "1"]);
    try {
      const { code, signal, stdout, stderr } = await run("lost", lost.url, (child) => {
        // the server goes; then the program terminates its pool
        stopWorker(worker, "SIGKILL")
          .then(() => lost.stop())
          .then(() => child.stdin!.end());
      });
      assert.equal(signal, null, `the program did not exit: ${stdout}${stderr}`);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /ready 9[\s\S]*terminated/);
    } finally {
      await stopWorker(worker, "SIGKILL");
      await lost.stop();
    }
  });
});
