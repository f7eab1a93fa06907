// The bench command prints every row it measures, with its ratio, in every run; a contender it
// cannot measure prints why on its row. Runs at tiny sizes (--scale): the figures are not checked.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { redisUnavailable } from "./redis.ts";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const hasPython = spawnSync("python3", ["--version"]).status === 0;

/** Runs this Node.js with `args`; `code` is -1 when a signal ended it (a crash, or the timeout). */
function node(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeout = 280_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { env, timeout, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

function bench(args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 280_000) {
  return node([cli, "bench", ...args], env, timeout);
}

/** The lines of `stdout` that are rows of a suite's table, `| what | result | ratio |`. */
function tableRows(stdout: string, name: RegExp): string[] {
  return stdout.split("\n").filter((line) => line.startsWith("| ") && name.test(line));
}

test("calls, map and startup print CPython's row and every ratio without --write", {
  timeout: 300_000,
  skip: hasPython ? false : "python3 is not installed",
}, async () => {
  const { code, stdout, stderr } = await bench(["--only", "calls,map,startup", "--quick", "--scale", "0.01"]);
  assert.equal(code, 0, stderr);
  for (const [suite, unit] of [
    ["calls", "calls/s"],
    ["map", "items/s"],
    ["startup", "ms"],
  ]) {
    // the row as it is measured, and in the suite's table with its ratio to ours in the same kind
    assert.match(stdout, new RegExp(`^  ${suite} +CPython Pool\\(2\\).* +[\\d.]+k?M? ${unit}$`, "m"), stdout);
    const cpython = tableRows(stdout, /^\| CPython Pool\(2\)/).filter((line) => line.includes(` ${unit} |`));
    assert.equal(cpython.length, 1, `${suite}:\n${stdout}`);
    assert.match(cpython[0]!, /\| \d+\.\d\d× \|$/, cpython[0]);
  }
  // each of ours is the reference of its kind: threads are not compared with spawn
  const ours = tableRows(stdout, /^\| multiprocessing-ts \((thread|spawn)\) \|/);
  assert.equal(ours.length, 6, stdout);
  for (const line of ours) assert.match(line, /\| 1\.00× \|$/);
  assert.doesNotMatch(stdout, /NaN/);
});

test("piscina pools of the bench destroyed right after their first result do not abort the bench", {
  timeout: 120_000,
}, async () => {
  // Node.js 20 and 22 abort when a worker is terminated inside `require()` of an ES module, and a
  // pool destroyed at its first result terminates the worker that is still loading. The window is
  // small: before the bench's piscina pools waited for their workers to load before they were
  // destroyed, these 240 pools aborted the process in 5 runs of 6 on Node.js 20.
  const peers = new URL("../dist/bench/peers.js", import.meta.url).href;
  const script = `
    const { startPiscina } = await import(${JSON.stringify(peers)});
    let pools = 0;
    await Promise.all([0, 1, 2, 3].map(async () => {
      for (let i = 0; i < 60; i++) {
        const pool = await startPiscina();
        await pool.run(1, { name: "identity" });
        await pool.destroy();
        pools++;
      }
    }));
    console.log(pools, "pools");`;
  const { code, stdout, stderr } = await node(["--input-type=module", "-e", script], process.env, 110_000);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), "240 pools");
});

test("CPython's rows say why when python3 cannot run", { timeout: 300_000 }, async () => {
  const empty = mkdtempSync(join(tmpdir(), "mpts-no-python-"));
  try {
    const { code, stdout, stderr } = await bench(["--only", "calls,map", "--quick", "--scale", "0.001"], {
      ...process.env,
      PATH: empty,
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^ {2}calls +CPython Pool\(2\)\.apply_async +skipped \(python3 is not installed\)$/m, stdout);
    assert.match(stdout, /^ {2}map +CPython Pool\(2\)\.map +skipped \(python3 is not installed\)$/m, stdout);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test("a bad --scale or --only is refused with what to pass instead", { timeout: 60_000 }, async () => {
  for (const [args, message] of [
    [["--scale", "0"], /--scale must be a positive number, e\.g\. --scale 0\.1 \(got "0"\)/],
    [["--scale"], /--scale must be a positive number, e\.g\. --scale 0\.1 \(got nothing\)/],
    [["--only", "cals"], /unknown suite "cals" in --only: the suites are calls, map, /],
  ] as const) {
    const { code, stdout, stderr } = await bench([...args], process.env, 50_000);
    assert.equal(code, 2, `${args.join(" ")}: ${stdout}${stderr}`);
    assert.match(stderr, message);
    assert.doesNotMatch(stdout, /bench —/);
  }
});

const WORK = [
  /sha256 \+ gzip of 10 × 64 KiB buffers/,
  /JSON\.parse \+ reduce of 1 × 1 MB documents, each sent to a worker as a string/,
];
const CONTENDERS = [
  "sequential (this thread)",
  "multiprocessing-ts (thread), map",
  "multiprocessing-ts (thread), imapUnordered",
  "multiprocessing-ts (spawn), map",
  "multiprocessing-ts (spawn), imapUnordered",
  "piscina, run() per item",
  "workerpool (thread), exec() per item",
  "workerpool (process), exec() per item",
  "CPython sequential",
  "CPython Pool(2).map",
];

test("workloads prints every contender of both kinds of work, its time and speed-up, or why not", {
  timeout: 300_000,
}, async () => {
  const { code, stdout, stderr } = await bench(["--only", "workloads", "--quick", "--scale", "0.02"]);
  assert.equal(code, 0, stderr);
  const rows = tableRows(stdout, /./).slice(1); // without the header
  for (const work of WORK) {
    const mine = rows.filter((line) => work.test(line));
    assert.deepEqual(
      mine.map((line) => line.split(" | ")[1]),
      CONTENDERS,
      stdout,
    );
    for (const line of mine) {
      const [, who, time, ratio] = line.slice(2, -2).split(" | ");
      if (time!.startsWith("skipped: ")) {
        // only what this machine cannot run is skipped, and it says why
        assert.ok(!who!.startsWith("multiprocessing-ts") && !who!.startsWith("sequential"), line);
        assert.ok(time!.length > "skipped: ".length + 5, line);
        continue;
      }
      assert.match(time!, /^[\d.]+ ms$/, line);
      assert.match(ratio!, who === "sequential (this thread)" ? /^1\.00×$/ : /^\d+\.\d\d× speed-up/, line);
    }
  }
  assert.doesNotMatch(stdout, /WRONG RESULT|NaN/);
  if (hasPython) assert.doesNotMatch(stdout, /CPython[^|]*\| skipped/, stdout);
});

test("cluster prints the bare BullMQ pair, the cluster pool and the local pools on each work, with ratios and targets", {
  timeout: 300_000,
  skip: redisUnavailable(),
}, async () => {
  const { code, stdout, stderr } = await bench(["--only", "cluster", "--quick", "--scale", "0.01"]);
  assert.equal(code, 0, stderr);
  const rows = tableRows(stdout, /./)
    .slice(1)
    .map((line) => line.slice(2, -2).split(" | "));
  assert.deepEqual(
    rows.map(([work, who]) => `${work.replace(/\d+/, "N")}: ${who}`),
    [
      "N one-item tasks: bare BullMQ pair (Queue.addBulk, 2 Workers)",
      "N one-item tasks: multiprocessing-ts (cluster), applyAsync",
      "N one-item tasks: multiprocessing-ts (cluster), applyAsync with a timeout (a job per call)",
      "N one-item tasks: multiprocessing-ts (thread), applyAsync",
      "N one-item tasks: multiprocessing-ts (spawn), applyAsync",
      "map of N trivial items: multiprocessing-ts (cluster), map, default chunks",
      "map of N trivial items: multiprocessing-ts (cluster), map, chunksize 100",
      "map of N trivial items: multiprocessing-ts (cluster), map, chunksize 100, every chunk in flight",
      "map of N trivial items: multiprocessing-ts (thread), map",
      "map of N trivial items: multiprocessing-ts (spawn), map",
      "N CPU-bound tasks: multiprocessing-ts (cluster), 8 tasks",
      "N CPU-bound tasks: multiprocessing-ts (thread), 8 tasks",
      "N CPU-bound tasks: multiprocessing-ts (spawn), 8 tasks",
    ],
    stdout,
  );
  for (const [, who, result, ratio, target] of rows) {
    assert.match(result!, /^[\d.]+[kM]? (calls\/s|items\/s|× speed-up)$/, `${who}: ${result}`);
    assert.match(ratio!, /^\d+\.\d\d×$/, `${who}: ${ratio}`);
    if (who!.startsWith("multiprocessing-ts (cluster)")) {
      // the ratios are to the cluster pool's first row on each work, which has the work's target
      const first = !who!.includes("chunksize 100") && !who!.endsWith("(a job per call)");
      if (first) assert.equal(ratio, "1.00×", who);
      if (first || who!.endsWith("chunksize 100")) assert.match(target!, /^≥ .*: (met|NOT met)$/, `${who}: ${target}`);
    }
  }
  assert.doesNotMatch(stdout, /NaN|WRONG RESULT/);
});
