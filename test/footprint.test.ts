// What a new pool worker loads before its first result is start-up time on the way to that result:
// it loads none of Node's modules that the library does not use there (a bare worker thread loads
// about 135; perf_hooks alone adds ten, node:util's argument parser and MIME types three).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { methods } from "./helpers.ts";

const program = fileURLToPath(new URL("./fixtures/worker-footprint.mjs", import.meta.url));

/** Node's modules a pool worker of `method` had loaded at its first task (a program run without tsx). */
function loadedByWorker(method: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [program, method], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit code ${code}`))));
  });
}

for (const method of methods) {
  describe(`a pool worker's first task (${method})`, { timeout: 60_000 }, () => {
    test("finds perf_hooks and node:util's argument parser not loaded", async () => {
      const loaded = await loadedByWorker(method);
      assert.ok(loaded.length > 50, `a list of Node's modules (got ${loaded.length})`);
      // left out: those a bare worker thread loads too (perf's utils, event loop utilization), and those
      // node:net loads (a child process's channel is a socket)
      const needless = loaded.filter((m) =>
        /^NativeModule (perf_hooks|internal\/perf\/(performance|usertiming|timerify|nodetiming|resource_timing|event_loop_delay)|internal\/histogram|internal\/util\/parse_args\/.*|internal\/mime)$/.test(
          m,
        ),
      );
      assert.deepEqual(needless, []);
    });
  });
}
