// `multiprocessing-ts demo --cluster` against a real redis-server: the demo's work on a local
// cluster beside the local pools, and everything it started (the server, two worker commands)
// gone when it ends, on Ctrl-C too, and when the program that started them is killed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { gone, runScript } from "./helpers.ts";
import { redisUnavailable } from "./redis.ts";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const skip = redisUnavailable();

/** The pids the demo's "local cluster:" line names: the server's first, then the workers'. */
function startedPids(stdout: string): number[] {
  const line = stdout.split("\n").find((l) => l.includes("local cluster: redis-server"));
  assert.ok(line, stdout);
  const server = Number(/redis-server \(pid (\d+)\)/.exec(line)![1]);
  const workers = /pids ([\d, ]+)\)/.exec(line)![1]!.split(", ").map(Number);
  return [server, ...workers];
}

describe("demo --cluster", { skip, timeout: 180_000 }, () => {
  test("runs the work on a local cluster beside the local pools and stops what it started", async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [cli, "demo", "--cluster", "--tasks", "2", "--size", "1000"],
        { timeout: 170_000, killSignal: "SIGKILL" },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    const lines = stdout.split("\n");
    assert.ok(
      lines.some((l) => /Pool\(\d+\), thread/.test(l)),
      stdout,
    );
    assert.ok(
      lines.some((l) => /Pool\(\d+\), spawn/.test(l)),
      stdout,
    );
    const cluster = lines.find((l) => /^ {2}cluster, 2×\d+ +\d+\.\d\d s {3}/.test(l));
    assert.ok(cluster, stdout);
    assert.match(cluster, /faster|as fast|slower/);
    const pids = startedPids(stdout);
    assert.equal(pids.length, 3);
    for (const pid of pids) assert.ok(await gone(pid, 10_000), `pid ${pid} is gone after the demo`);
    assert.match(stdout, /local cluster stopped/);
  });

  test("Ctrl-C stops the local cluster's server and workers by their pids", async () => {
    let pids: number[] = [];
    const { code, stderr } = await runScript(
      "./fixtures/local-cluster.ts",
      [],
      (line, kill) => {
        const started = JSON.parse(line) as { server: number; workers: number[] };
        pids = [started.server, ...started.workers];
        kill("SIGINT");
      },
      120_000,
    );
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGINT: stopping the cluster workers and redis-server/);
    assert.equal(pids.length, 3);
    for (const pid of pids) assert.ok(await gone(pid, 10_000), `pid ${pid} is gone after Ctrl-C`);
  });

  test("a program killed with SIGKILL leaves no redis-server and no worker behind", async () => {
    let pids: number[] = [];
    const { signal } = await runScript(
      "./fixtures/local-cluster.ts",
      [],
      (line, kill) => {
        const started = JSON.parse(line) as { server: number; workers: number[] };
        pids = [started.server, ...started.workers];
        kill("SIGKILL");
      },
      120_000,
    );
    assert.equal(signal, "SIGKILL");
    assert.equal(pids.length, 3);
    for (const pid of pids) assert.ok(await gone(pid, 10_000), `pid ${pid} is gone after its starter was killed`);
  });
});
