// The worker command's status line against a real redis-server: on a terminal (a pseudo-terminal
// through util-linux `script`), one line on stderr with the jobs done, running and the rate,
// redrawn at most ~10 times a second and blanked before the worker's own lines; through a pipe,
// nothing at all.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Pool } from "multiprocessing-ts";
import { square } from "./fixtures/cluster-tasks.ts";
import { startWorker, stopWorker, workerArgs } from "./cluster-workers.ts";
import { shownLines } from "./helpers.ts";
import { type RedisServer, redisUnavailable, startRedis } from "./redis.ts";

const skip = redisUnavailable();
const hasScript = spawnSync("script", ["--version"]).status === 0;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

describe("cluster worker status line", { skip, timeout: 180_000 }, () => {
  let server: RedisServer;
  let cwd: string;

  before(async () => {
    server = await startRedis();
    cwd = mkdtempSync(join(tmpdir(), "mpts-cluster-status-"));
  });

  after(async () => {
    await server?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  test("on a terminal: jobs done, running and rate on one line, redrawn at most ~10 times a second, blanked before its own lines", {
    skip: hasScript ? false : "util-linux `script` is not installed",
  }, async () => {
    const command = [process.execPath, ...workerArgs(server.url, ["--processes", "1"])].map(quote).join(" ");
    const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd, stdio: ["ignore", "pipe", "inherit"] });
    const guard = setTimeout(() => child.kill("SIGKILL"), 150_000);
    let screen = "";
    const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
    child.stdout.on("data", (chunk) => {
      screen += chunk;
      for (const w of [...waiters]) {
        const m = w.re.exec(screen);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    /** Resolves once the terminal got text matching `re`; rejects, showing the screen, after 60 s. */
    const shown = (re: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const m = re.exec(screen);
        if (m) return resolve(m);
        const late = setTimeout(() => reject(new Error(`the terminal never showed ${re}:\n${screen}`)), 60_000);
        waiters.push({
          re,
          resolve: (found) => {
            clearTimeout(late);
            resolve(found);
          },
        });
      });
    try {
      const [, pid] = await shown(/worker \S+-(\d+)-[0-9a-f]{6}: connected to/);
      const connectedAt = performance.now();
      {
        await using pool = new Pool({ cluster: server.url, processes: 4 });
        assert.deepEqual(
          await pool.map(square, range(40), { chunksize: 1 }),
          range(40).map((x) => x * x),
        );
      }
      await shown(/multiprocessing-ts worker: 40 done · 0 running · [\d.]+\/s/);
      const elapsed = performance.now() - connectedAt;
      const draws = screen.split("\rmultiprocessing-ts worker: ").length - 1;
      assert.ok(draws >= 1, screen);
      assert.ok(draws <= elapsed / 100 + 3, `${draws} draws in ${elapsed.toFixed(0)} ms: at most ~10 a second`);
      process.kill(Number(pid), "SIGTERM");
      assert.equal(await exited, 0, screen);
      const lines = shownLines(screen).filter((l) => l !== "");
      assert.match(lines.at(-1)!, /: stopped$/, screen);
      for (const line of lines.filter((l) => /: (SIGTERM|stopped)/.test(l))) {
        assert.doesNotMatch(line, / done · /, "the status line is blanked before the worker's own lines");
      }
    } finally {
      clearTimeout(guard);
      child.kill("SIGKILL");
    }
  });

  test("through a pipe: nothing of the status line is written", async () => {
    const worker = await startWorker(server.url, cwd, ["--processes", "1"]);
    let stderr = "";
    worker.stderr!.on("data", (d) => (stderr += d));
    try {
      await using pool = new Pool({ cluster: server.url, processes: 4 });
      assert.deepEqual(
        await pool.map(square, range(40), { chunksize: 1 }),
        range(40).map((x) => x * x),
      );
    } finally {
      assert.equal(await stopWorker(worker, "SIGTERM"), 0);
    }
    assert.equal(stderr, "");
  });
});
