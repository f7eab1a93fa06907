// The library under each runtime it supports: Node.js 20, 22 and 24 (with tsx, and with Node.js's
// own type stripping where it has it) and Bun. The runtimes are the ones scripts/runtimes.sh
// fetches into its cache; a runtime not fetched is skipped, saying so (CI fetches them all).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/runtime-report.ts", import.meta.url));
const cacheFixture = fileURLToPath(new URL("./fixtures/compile-cache-child.ts", import.meta.url));
const tsxOnly = fileURLToPath(new URL("./fixtures/tsx-only-report.ts", import.meta.url));

/** The binary of a fetched runtime, or undefined when scripts/runtimes.sh has not fetched it. */
function fetched(name: string): string | undefined {
  try {
    return execFileSync("bash", [`${root}scripts/runtimes.sh`, "bin", name], {
      encoding: "utf8",
      stdio: "pipe",
    }).trim();
  } catch {
    return undefined;
  }
}

interface Report {
  execPath: string;
  version: string;
  bun: string | undefined;
  preloads: number;
}

/** What test/fixtures/runtime-report.ts prints. */
type RuntimeReport = Record<"parent" | "spawn" | "thread", Report & { cube?: number }> &
  Record<"spawn values" | "thread values", { result: string[]; queue: string[] }>;

/**
 * Runs `script` as `bin ...flags script ...args`, with `env` added to this process's environment;
 * resolves to the JSON of its last line, or rejects with its output.
 */
function run<T = RuntimeReport>(
  bin: string,
  flags: string[],
  script = fixture,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<T> {
  const child = spawn(bin, [...flags, script, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve, reject) =>
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (code === 0) resolve(JSON.parse(stdout.trim().split("\n").at(-1)!));
      else reject(new Error(`${bin} ${flags.join(" ")} exited with ${signal ?? code}:\n${stdout}${stderr}`));
    }),
  );
}

const cases: { runtime: string; loader: string; flags: (version: string) => string[] | string }[] = [
  { runtime: "node20", loader: "tsx", flags: () => ["--import", "tsx"] },
  { runtime: "node22", loader: "tsx", flags: () => ["--import", "tsx"] },
  { runtime: "node22", loader: "type stripping", flags: stripFlags },
  { runtime: "node24", loader: "tsx", flags: () => ["--import", "tsx"] },
  { runtime: "node24", loader: "type stripping", flags: stripFlags },
  { runtime: "bun", loader: "bun", flags: () => [] },
];

/** Node.js strips types by default from 22.18 on, and behind a flag from 22.6 on. */
function stripFlags(version: string): string[] | string {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return [];
  if (major === 22 && minor >= 6) return ["--experimental-strip-types"];
  return `Node.js ${version} cannot strip types`;
}

for (const { runtime, loader, flags } of cases) {
  const bin = fetched(runtime);
  const skip = bin ? false : `${runtime} is not fetched (run scripts/runtimes.sh fetch ${runtime})`;
  test(`${runtime} (${loader}): children in both start methods run on the parent's runtime`, {
    skip,
    timeout: 120_000,
  }, async (t) => {
    const version = execFileSync(bin!, ["--version"], { encoding: "utf8" }).trim();
    const args = flags(version);
    if (typeof args === "string") return t.skip(args);
    const out = await run(bin!, args);
    assert.equal(realpathSync(out.parent.execPath), realpathSync(bin!));
    assert.equal(out.parent.bun !== undefined, runtime === "bun");
    const values = [
      '[object Map] [["k",1]]',
      '[object Float64Array] [1.5,"-0"]',
      '[object Date] "1970-01-01T00:00:00.000Z"',
    ];
    for (const method of ["spawn", "thread"] as const) {
      assert.deepEqual(out[method], { ...out.parent, cube: 27 }, `${method} child of ${runtime}`);
      // what only the runtime's structured-clone serializer carries, from a pool and over a queue
      assert.deepEqual(out[`${method} values`], { result: values, queue: values }, `${method} values`);
    }
  });
}

// tsx's `--import` hooks load the parent's TypeScript, not its worker threads': Node.js runs them in
// the main thread only (`module.registerHooks` where tsx uses it, and the one hooks thread that
// Node.js 22.2.0 shared with workers was reverted in 22.3.0), so a thread child registers tsx itself.
for (const runtime of ["node20", "node22", "node24"]) {
  const bin = fetched(runtime);
  test(`${runtime} (tsx): children in both start methods run TypeScript that only tsx runs`, {
    skip: bin ? false : `${runtime} is not fetched (run scripts/runtimes.sh fetch ${runtime})`,
    timeout: 120_000,
  }, async () => {
    const out = await run<Record<string, number>>(bin!, ["--import", "tsx"], tsxOnly);
    assert.deepEqual(out, { spawn: 42, thread: 42 });
  });
}

// A child compiles the library's bundle, tsx and the program's modules at every start unless
// Node.js's compile cache (22.1 and later) holds them: each child turns it on for itself.
for (const runtime of ["node22", "node24"]) {
  const bin = fetched(runtime);
  for (const method of ["spawn", "thread"] as const) {
    test(`${runtime}: a ${method} child keeps what it compiles in Node.js's compile cache`, {
      skip: bin ? false : `${runtime} is not fetched (run scripts/runtimes.sh fetch ${runtime})`,
      timeout: 120_000,
    }, async () => {
      const tmp = mkdtempSync(join(tmpdir(), "mpts-compile-cache-"));
      try {
        const out = await run(bin!, ["--import", "tsx"], cacheFixture, [method], { TMPDIR: tmp });
        assert.deepEqual(out, { [method]: 42 });
        const cache = join(tmp, "node-compile-cache");
        const entries = existsSync(cache) ? readdirSync(cache, { recursive: true }) : [];
        assert.ok(entries.length > 1, `nothing was written to ${cache}`);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
}

const bun = fetched("bun");
for (const flag of ["--preload", "-r"]) {
  test(`under Bun, children in both start methods run the program's ${flag} preloads`, {
    skip: bun ? false : "bun is not fetched (run scripts/runtimes.sh fetch bun)",
    timeout: 60_000,
  }, async () => {
    const out = await run(bun!, [flag, "./test/fixtures/runtime-preload.ts"]);
    assert.equal(out.parent.preloads, 1);
    for (const method of ["spawn", "thread"] as const) assert.equal(out[method].preloads, 1, `${method} child`);
  });
}
test("under Bun, a heap limit (which JavaScriptCore cannot enforce) is refused at once, naming Bun", {
  skip: bun ? false : "bun is not fetched (run scripts/runtimes.sh fetch bun)",
  timeout: 60_000,
}, async () => {
  const out = await run<Record<string, { name: string; message: string } | null>>(
    bun!,
    [],
    fileURLToPath(new URL("./fixtures/bun-limits.ts", import.meta.url)),
  );
  for (const method of ["spawn", "thread"]) {
    const error = out[`maxHeapMb ${method}`];
    assert.ok(error, `new Process({ maxHeapMb }) in ${method} did not throw under Bun`);
    assert.equal(error.name, "ProcessError");
    assert.match(error.message, /maxHeapMb.*Bun.*Node\.js/);
  }
});
