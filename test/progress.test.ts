// Progress of map-like calls: `{ onProgress }` on executor.map, the `{ progress }` option's checks,
// and the bar itself, drawn through a real pseudo-terminal (util-linux `script`): drawn, redrawn at
// most ~10 times a second, blanked at the end; and through a pipe, where nothing at all is written.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Pool, ProcessPoolExecutor } from "multiprocessing-ts";
import { ProgressLine, REDRAW_MS } from "../src/internal/progress.ts";
import { identity } from "./fixtures/tasks.ts";
import { methods, runScript, shownLines } from "./helpers.ts";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

const fixture = fileURLToPath(new URL("./fixtures/progress-calls.ts", import.meta.url));
const labels = ["MAP", "pool.map", "STARMAP", "IMAP", "UNORDERED", "EXMAP"];
const unknownLength = new Set(["UNORDERED"]);
const hasScript = spawnSync("script", ["--version"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "mpts-progress-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Write = { t: number; text: string };

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Runs the fixture with its stdout and stderr on a pseudo-terminal; resolves to what the terminal got. */
function onTerminal(method: string, log: string): Promise<{ code: number | null; screen: string }> {
  return inScript([process.execPath, ...process.execArgv, fixture, method, log].map(quote).join(" "));
}

/** Runs the shell `command` on a pseudo-terminal; resolves to what the terminal got. */
function inScript(command: string): Promise<{ code: number | null; screen: string }> {
  const child = spawn("script", ["-qfec", command, "/dev/null"], { stdio: ["ignore", "pipe", "inherit"] });
  let screen = "";
  child.stdout.on("data", (chunk) => (screen += chunk));
  const guard = setTimeout(() => child.kill("SIGKILL"), 90_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(guard);
      resolve({ code, screen });
    }),
  );
}

/** The stderr writes between `<start label>` and `<end label>`. */
function writesOf(writes: Write[], label: string): Write[] {
  const start = writes.findIndex((w) => w.text === `<start ${label}>`);
  const end = writes.findIndex((w) => w.text === `<end ${label}>`);
  assert.ok(start >= 0 && end > start, `the log has ${label}'s call`);
  return writes.slice(start + 1, end);
}

test("a redraw starts a full interval after the previous draw was written, however long drawing took", {
  timeout: 10_000,
}, async () => {
  const writes: number[] = [];
  let slow = true;
  let second: () => void;
  const drawnTwice = new Promise<void>((resolve) => (second = resolve));
  const line = ProgressLine.open({
    isTTY: true,
    // the first draw is held up between its clock and its write, as a preempted thread would be
    get columns() {
      const until = performance.now() + (slow ? 20 : 0);
      slow = false;
      while (performance.now() < until);
      return 80;
    },
    write(text: string) {
      if (!/^\r\S/.test(text)) return;
      writes.push(performance.now());
      if (writes.length === 1) line.show("second");
      else second();
    },
  })!;
  line.show("first");
  // the line's timers are unref'd: this one keeps the test's event loop alive meanwhile
  const alive = setTimeout(() => {}, 5_000);
  await drawnTwice;
  clearTimeout(alive);
  line.end();
  const gap = writes[1]! - writes[0]!;
  assert.ok(gap >= REDRAW_MS, `redrawn ${gap.toFixed(1)} ms after the previous write`);
});

for (const method of methods) {
  describe(`progress bar, ${method}`, () => {
    test("on a terminal: drawn, redrawn at most ~10 times a second, blanked at the end", {
      timeout: 120_000,
      skip: hasScript ? false : "util-linux `script` is not installed",
    }, async () => {
      const log = join(dir, `terminal-${method}.json`);
      const { code, screen } = await onTerminal(method, log);
      assert.equal(code, 0, screen);
      const writes = JSON.parse(readFileSync(log, "utf8")) as Write[];
      const lines = shownLines(screen);
      for (const label of labels) {
        const own = writesOf(writes, label);
        const draws = own.filter((w) => /^\r\S/.test(w.text));
        // each call takes ~250 ms or more (24 tasks of 20 ms on 2 workers)
        assert.ok(draws.length >= 1, `${label}: a bar was drawn: ${JSON.stringify(own)}`);
        for (const draw of draws) {
          assert.ok(draw.text.startsWith(`\r${label} `), `${label}: labelled: ${JSON.stringify(draw.text)}`);
          if (unknownLength.has(label)) assert.match(draw.text, /^\r\S+ \d+ done · [\d.]+k?\/s *$/);
          else assert.match(draw.text, / [█░]{5,} \d+\/24 +\d+% · [\d.]+k?\/s · ETA (\d+:\d\d|--:--) *$/);
        }
        for (let i = 1; i < draws.length; i++) {
          const gap = draws[i]!.t - draws[i - 1]!.t;
          assert.ok(gap >= REDRAW_MS, `${label}: redrawn after only ${gap.toFixed(1)} ms`);
        }
        // the call's last write blanks the line, and the next output is alone on it
        assert.match(own.at(-1)!.text, /^\r +\r$/, `${label}: blanked at the end`);
        assert.ok(lines.includes(`after ${label}`), `${label}: line left clean: ${JSON.stringify(lines)}`);
      }
    });

    test("through a pipe: nothing at all is written", { timeout: 120_000 }, async () => {
      const log = join(dir, `pipe-${method}.json`);
      const { code, stdout, stderr } = await runScript("fixtures/progress-calls.ts", [method, log], undefined, 90_000);
      assert.equal(code, 0, stderr);
      assert.equal(stderr, "");
      assert.deepEqual(
        stdout.trim().split("\n"),
        labels.map((label) => `after ${label}`),
      );
      const writes = JSON.parse(readFileSync(log, "utf8")) as Write[];
      assert.deepEqual(
        writes.filter((w) => !w.text.startsWith("<")),
        [],
      );
    });
  });

  describe(`progress options, ${method}`, () => {
    test("executor.map reports onProgress with the input's length when it is known", { timeout: 60_000 }, async () => {
      await using executor = new ProcessPoolExecutor({ maxWorkers: 2, context: method });
      const calls: [number, number | undefined][] = [];
      const out = await executor.map(identity, [1, 2, 3, 4, 5], {
        chunksize: 2,
        onProgress: (done, total) => calls.push([done, total]),
        progress: true,
      });
      assert.deepEqual(out, [1, 2, 3, 4, 5]);
      assert.deepEqual(
        calls.map(([, total]) => total),
        [5, 5, 5],
      );
      // once per chunk (of 2, 2 and 1 items), in the order they finish
      const done = calls.map(([d]) => d);
      assert.ok(
        [
          [2, 4, 5],
          [1, 3, 5],
          [2, 3, 5],
        ].some((order) => order.join() === done.join()),
        `${done}`,
      );
      const unknown: (number | undefined)[] = [];
      function* three() {
        yield* [1, 2, 3];
      }
      await executor.map(identity, three(), { onProgress: (_, total) => unknown.push(total) });
      assert.deepEqual(unknown, [undefined, undefined, undefined]);
    });

    test("every map-like call takes progress, and refuses a bad value", { timeout: 60_000 }, async () => {
      await using pool = new Pool({ processes: 1, context: method });
      await using executor = new ProcessPoolExecutor({ maxWorkers: 1, context: method });
      const drain = async (stream: AsyncIterable<unknown>) => {
        const out: unknown[] = [];
        for await (const x of stream) out.push(x);
        return out;
      };
      for (const progress of [true, false, "label"]) {
        assert.deepEqual(await pool.map(identity, [1, 2], { progress }), [1, 2]);
        assert.deepEqual(await pool.mapAsync(identity, [1, 2], { progress }).get(), [1, 2]);
        assert.deepEqual(await pool.starmap(identity, [[1], [2]], { progress }), [1, 2]);
        assert.deepEqual(await pool.starmapAsync(identity, [[1], [2]], { progress }).get(), [1, 2]);
        assert.deepEqual(await drain(pool.imap(identity, [1, 2], { progress })), [1, 2]);
        assert.deepEqual((await drain(pool.imapUnordered(identity, [1, 2], { progress }))).sort(), [1, 2]);
        assert.deepEqual(await executor.map(identity, [1, 2], { progress }), [1, 2]);
      }
      const bad = /options\.progress must be true, false or a label string \(got (the number )?1\)/;
      await assert.rejects(pool.map(identity, [1], { progress: 1 as never }), TypeError);
      await assert.rejects(pool.map(identity, [1], { progress: 1 as never }), bad);
      assert.throws(() => pool.imap(identity, [1], { progress: 1 as never }), bad);
      assert.throws(() => executor.map(identity, [1], { progress: 1 as never }), bad);
      assert.throws(() => executor.map(identity, [1], { progres: true } as never), /did you mean 'progress'/);
      await assert.rejects(pool.apply(identity, [1], { progress: true } as never), /has no option 'progress'/);
    });
  });
}

// The command line: stdout goes to a file, stderr to the terminal, which shows the progress and is
// blank at the end; the file has the figures alone. Through pipes stderr gets nothing.
const commands: [name: string, args: string[], line: RegExp][] = [
  ["demo", ["demo", "--tasks", "4", "--size", "10000000"], /^(sequential|Pool\(\d+\), (thread|spawn)) [█░]+ \d\/4 /],
  [
    "bench",
    ["bench", "--quick", "--only", "transfer"],
    /^bench \d+:\d\d · transfer \(1\/1\) · multiprocessing-ts \((thread|spawn)\) *$/,
  ],
];
for (const [name, args, line] of commands) {
  test(`${name} shows progress on a terminal, and none of it in a file`, {
    timeout: 120_000,
    skip: hasScript ? false : "util-linux `script` is not installed",
  }, async () => {
    const out = join(dir, `${name}.out`);
    const { code, screen } = await inScript(`${[process.execPath, cli, ...args].map(quote).join(" ")} > ${quote(out)}`);
    assert.equal(code, 0, screen);
    const draws = screen.split("\r").filter((text) => /\S/.test(text));
    assert.ok(draws.length >= 2, `progress was drawn: ${JSON.stringify(screen)}`);
    for (const text of draws) assert.match(text, line);
    assert.deepEqual(shownLines(screen).filter(Boolean), [], "the terminal is blank at the end");
    const file = readFileSync(out, "utf8");
    assert.doesNotMatch(file, /[\r█░]|bench \d+:/);
    assert.match(file, name === "demo" ? /Same results everywhere/ : /transfer +multiprocessing-ts \(spawn\)/);
  });

  test(`${name} writes no progress to a pipe`, { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        const guard = setTimeout(() => child.kill("SIGKILL"), 90_000);
        child.on("exit", (code) => {
          clearTimeout(guard);
          resolve({ code, stdout, stderr });
        });
      },
    );
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    assert.doesNotMatch(stdout, /[\r█░]|bench \d+:/);
  });
}

test("bench's line names each step of the workloads suite, and none of it reaches the file", {
  timeout: 180_000,
  skip: hasScript ? false : "util-linux `script` is not installed",
}, async () => {
  const out = join(dir, "workloads.out");
  const args = ["bench", "--quick", "--scale", "0.02", "--only", "workloads"];
  const { code, screen } = await inScript(`${[process.execPath, cli, ...args].map(quote).join(" ")} > ${quote(out)}`);
  assert.equal(code, 0, screen);
  const prefix = /^bench \d+:\d\d · workloads \(1\/1\) · /;
  const steps = new Set(
    screen
      .split("\r")
      .filter((text) => /\S/.test(text))
      .map((text) => {
        assert.match(text, prefix);
        return text.replace(prefix, "").trimEnd();
      }),
  );
  // the steps that block the event loop (inputs, CPython, the sequential runs) and a contender of each work
  for (const step of [
    "making the inputs",
    "CPython (hashlib, zlib, json)",
    "hashAndGzip · sequential (this thread)",
    "hashAndGzip · piscina, run() per item",
    "parseAndReduce · sequential (this thread)",
    "parseAndReduce · piscina, run() per item",
  ]) {
    assert.ok(steps.has(step), `${step} in ${JSON.stringify([...steps])}`);
  }
  assert.deepEqual(shownLines(screen).filter(Boolean), [], "the terminal is blank at the end");
  const file = readFileSync(out, "utf8");
  assert.doesNotMatch(file, /[\r█░]|bench \d+:/);
  assert.match(file, /workloads +piscina, run\(\) per item, JSON\.parse/);
});
