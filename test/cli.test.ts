// The command line: --version, each command's --help (which must not run the command), and the
// demo's verdict on a pool that was slower than the sequential run.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { compare } from "../src/demo/index.ts";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const version = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version as string;

function run(args: string[], timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout, killSignal: "SIGKILL" }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

test("--version prints the package's version", { timeout: 30_000 }, async () => {
  for (const flag of ["--version", "-v"]) {
    const { code, stdout, stderr } = await run([flag]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), version);
  }
});

for (const command of ["demo", "bench", "soak"]) {
  test(`${command} --help prints its usage without running it`, { timeout: 30_000 }, async () => {
    for (const args of [
      [command, "--help"],
      [command, "-h"],
      ["help", command],
    ]) {
      // a run of any of these takes far longer than this timeout
      const { code, stdout, stderr } = await run(args, 20_000);
      assert.equal(code, 0, `${args.join(" ")}: ${stderr}`);
      assert.match(stdout, new RegExp(`^usage: multiprocessing-ts ${command} `));
      assert.doesNotMatch(stdout, /sequential +\d|bench —|cycles:|Pool\(\d/);
      assert.equal(stderr, "");
    }
  });
}

test("an unknown command says so and exits with 2", { timeout: 30_000 }, async () => {
  const { code, stderr } = await run(["bogus"]);
  assert.equal(code, 2);
  assert.match(stderr, /unknown command "bogus"/);
  assert.match(stderr, /usage: multiprocessing-ts <command>/);
});

test("the demo's verdict: faster, about as fast, or slower and why", { timeout: 10_000 }, () => {
  assert.equal(compare(1000, 250, 4), "4.00× faster (pool start-up included)");
  assert.match(compare(1000, 1010, 4), /^about as fast as sequential: /);
  const slower = compare(100, 1000, 4);
  assert.match(slower, /^10\.00× slower than sequential: the tasks are too short .* --size/);
  assert.doesNotMatch(slower, /faster/);
  assert.match(compare(1000, 1010, 1), /one core/);
  assert.doesNotMatch(compare(990, 1000, 2), /faster/);
});

test("the demo with tiny tasks says the pools were slower", { timeout: 120_000 }, async () => {
  const { code, stdout, stderr } = await run(["demo", "--tasks", "2", "--size", "1000"], 110_000);
  assert.equal(code, 0, stderr);
  const verdicts = stdout.split("\n").filter((line) => line.includes("Pool("));
  assert.equal(verdicts.length, 2, stdout);
  for (const line of verdicts) {
    assert.match(line, /slower than sequential/);
    assert.doesNotMatch(line, /faster/);
  }
});
