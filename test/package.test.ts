// The published package: packed as `npm publish` packs it, what the tarball holds, and the package
// installed into a new project (without install scripts) where the README's examples run as shown.
import assert from "node:assert/strict";
import { type ExecFileException, execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
const tsx = import.meta.resolve("tsx");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file` with `args` in `cwd`; never rejects (a failure is a non-zero code); killed after `timeout` ms. */
function run(file: string, args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout, killSignal: "SIGKILL", maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: `${stderr}${error && code === -1 ? (error as ExecFileException).message : ""}` });
    });
  });
}

// The musl prebuild is built where Debian's musl-tools is installed, which CI does: there it must be.
const muslGcc = spawnSync("musl-gcc", ["--version"], { stdio: "ignore" }).status === 0;
const muslSkip =
  process.platform !== "linux" || process.arch !== "x64"
    ? "the musl prebuild is built on Linux x64 only"
    : !muslGcc && process.env.CI !== "true"
      ? "musl-gcc is not installed (apt-get install musl-tools)"
      : false;

let scratch = "";
let app = "";
let files: string[] = [];

before(
  async () => {
    scratch = mkdtempSync(join(tmpdir(), "mpts-package-test-"));
    const packed = await run(process.execPath, [join(root, "scripts", "pack.mjs"), scratch], root, 300_000);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = packed.stdout.trim().split("\n").pop()!;
    const listing = await run("tar", ["tzf", tarball], scratch);
    assert.equal(listing.code, 0, listing.stderr);
    files = listing.stdout
      .split("\n")
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ""));
    app = join(scratch, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // no install scripts: the package must work as unpacked (its addon prebuilt)
    const installed = await run(
      "npm",
      ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", tarball],
      app,
      300_000,
    );
    assert.equal(installed.code, 0, installed.stderr);
  },
  { timeout: 600_000 },
);

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("the tarball holds what users run, and nothing else", { timeout: 10_000 }, () => {
  const required = [
    "package.json",
    "README.md",
    "LICENSE",
    "BENCHMARKS.md",
    "dist/bundle/index.js",
    "dist/bundle/spawn-entry.js",
    "dist/bundle/thread-entry.js",
    "dist/index.d.ts",
    "dist/pool.d.ts",
    "dist/cli.js",
    "dist/demo/index.js",
    "dist/bench/index.js",
    "native/shm.cc",
    "binding.gyp",
    "scripts/build-native.mjs",
  ];
  if (process.platform === "linux") required.push(`prebuilds/linux-${process.arch}/mpts_shm.node`);
  if (!muslSkip) required.push("prebuilds/linux-x64-musl/mpts_shm.node");
  for (const file of required) assert.ok(files.includes(file), `the tarball lacks ${file}`);
  const forbidden: [RegExp, string][] = [
    [/\.map$/, "a source map"],
    [/^src\//, "TypeScript sources"],
    [/^test\//, "tests"],
    [/^build\//, "this machine's build folder"],
    [/^dist\/(?!index\.js$|cli\.js$|tools\.js$)[^/]+\.js$/, "the unbundled per-module library"],
    [/^dist\/(internal|backends)\/.*\.js$/, "the unbundled per-module library"],
    [/^dist\/(bench|demo)\/.*\.d\.ts$|^dist\/cli\.d\.ts$/, "declarations of the command line"],
    [/^dist\/bench\/workers\/workerpool-task\.js$/, "bench code that needs a dev dependency"],
    [/^scripts\/(?!build-native\.mjs$)/, "development scripts"],
  ];
  for (const file of files)
    for (const [pattern, what] of forbidden) assert.doesNotMatch(file, pattern, `${file} is ${what}`);
});

/**
 * The files of the package's dist/bundle/ that loading `entry` reads, in the order first met: its static
 * imports and dynamic ones of the bundle's own files, but for the library's index, which a child
 * imports only for a value that needs it.
 */
function filesLoaded(bundle: string, entry: string): string[] {
  const seen: string[] = [];
  const visit = (file: string) => {
    if (seen.includes(file)) return;
    seen.push(file);
    const text = readFileSync(join(bundle, file), "utf8");
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)"\.\/([^"]+)"/g))
      if (m[1] !== "index.js") visit(m[1]!);
  };
  visit(entry);
  return seen;
}

test("a child loads its code from one file beside its entry script", { timeout: 10_000 }, () => {
  // every file costs a new thread or process's module loader ~1.5-2 ms: a thread child used to read nine
  const bundle = join(app, "node_modules", "multiprocessing-ts", "dist", "bundle");
  assert.deepEqual(filesLoaded(bundle, "thread-entry.js"), ["thread-entry.js", "child.js"]);
  assert.deepEqual(filesLoaded(bundle, "spawn-entry.js"), ["spawn-entry.js", "child.js"]);
});

test("the musl prebuild needs only musl's libc, loads with musl's loader and maps shared memory", {
  timeout: 60_000,
  skip: muslSkip,
}, async () => {
  // No Node.js for musl runs here (it needs a libstdc++ built for musl, which Debian lacks), so a small
  // musl program stands in for one: test/fixtures/musl-napi-host.c.
  const addon = join(app, "node_modules", "multiprocessing-ts", "prebuilds", "linux-x64-musl", "mpts_shm.node");
  const needed = await run("readelf", ["-d", addon], app);
  assert.equal(needed.code, 0, needed.stderr);
  assert.deepEqual(
    [...needed.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]),
    ["libc.so"],
  );
  const host = join(root, "test", "fixtures", "musl-napi-host.c");
  const defined = new Set([...readFileSync(host, "utf8").matchAll(/^int (napi_\w+)\(/gm)].map((m) => m[1]));
  const symbols = await run("nm", ["-D", "--undefined-only", addon], app);
  assert.equal(symbols.code, 0, symbols.stderr);
  const stubs = [...symbols.stdout.matchAll(/ U (napi_\w+)$/gm)]
    .map((m) => m[1]!)
    .filter((name) => !defined.has(name))
    .map((name) => `int ${name}(void) { return 0; }\n`);
  writeFileSync(join(scratch, "napi-stubs.c"), stubs.join(""));
  const built = await run("musl-gcc", ["-rdynamic", host, "napi-stubs.c", "-o", "musl-host"], scratch);
  assert.equal(built.code, 0, built.stderr);
  const loaded = await run(join(scratch, "musl-host"), [addon], scratch);
  assert.equal(loaded.code, 0, `exited with ${loaded.code}: ${loaded.stderr}`);
  assert.deepEqual(loaded.stdout.trim().split("\n"), [
    "open",
    "unlink",
    "wait",
    "wake",
    "waitAsync",
    "dieWithParent",
    "shared",
  ]);
  // the glibc prebuild does not load there: the stand-in tells one C library from the other
  const glibc = await run(join(scratch, "musl-host"), [addon.replace("-musl", "")], scratch);
  assert.equal(glibc.code, 1);
  assert.match(glibc.stderr, /dlopen: .*libstdc\+\+/);
});

test("no shipped script points at a source map", { timeout: 10_000 }, () => {
  const pkg = join(app, "node_modules", "multiprocessing-ts");
  const scripts = files.filter((f) => extname(f) === ".js");
  assert.ok(scripts.length > 10);
  for (const file of scripts)
    assert.doesNotMatch(readFileSync(join(pkg, file), "utf8"), /sourceMappingURL/, `${file} names a source map`);
});

/** The README's TypeScript and JavaScript blocks, each with the file name its first line gives. */
function readmeExamples(): { name: string; code: string }[] {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/^```(ts|js)\n([\s\S]*?)^```$/gm)];
  return blocks.map(([, lang, code], i) => {
    const named = /^\/\/ ([\w-]+\.(?:ts|mjs|js))\b/.exec(code!);
    return { name: named?.[1] ?? `example-${i}.${lang}`, code: code! };
  });
}

test("the README's examples run as shown from the installed package", { timeout: 600_000 }, async () => {
  const examples = readmeExamples();
  assert.ok(examples.length >= 8, `found ${examples.length} examples in README.md`);
  const names = examples.map((e) => e.name);
  assert.ok(names.includes("primes.ts") && names.includes("primes.mjs"), names.join(", "));
  for (const { name, code } of examples) {
    writeFileSync(join(app, name), code);
    const args = name.endsWith(".ts") ? ["--import", tsx, name] : [name];
    const { code: exit, stdout, stderr } = await run(process.execPath, args, app);
    assert.equal(exit, 0, `${name}:\n${code}\nexited with ${exit}:\n${stdout}\n${stderr}`);
    assert.equal(stderr, "", `${name} wrote to stderr:\n${stderr}`);
    if (name.startsWith("primes.")) assert.match(stdout, /\[ 78498, 148933, 216816, 283146 \]/);
    if (code.includes("new SharedMemory")) assert.equal(stdout.trim(), "7", "SharedMemory (needs the prebuilt addon)");
  }
  assert.deepEqual(
    readdirSync(app).filter((f) => f.startsWith("core")),
    [],
    "a core dump",
  );
});

test("installed without install scripts, the counter uses the prebuilt addon and the demo runs", {
  timeout: 300_000,
}, async () => {
  const counter = readmeExamples().find((e) => e.code.includes("const counter = new Value"));
  assert.ok(counter, "the README's counter example");
  const script = `${counter.code}\nimport { nativeAddonStatus } from "multiprocessing-ts";\nif (isMain(import.meta)) console.log(JSON.stringify(nativeAddonStatus()));\n`;
  writeFileSync(join(app, "counter-status.ts"), script);
  const ran = await run(process.execPath, ["--import", tsx, "counter-status.ts"], app);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stderr, "", "no warning about a slower fallback");
  assert.deepEqual(ran.stdout.trim().split("\n"), ["40000", JSON.stringify({ available: true })]);
  const cli = join(app, "node_modules", ".bin", "multiprocessing-ts");
  const demo = await run(cli, ["demo", "--tasks", "4", "--size", "2000000"], app, 280_000);
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /sequential/);
  assert.match(demo.stdout, /thread/);
  assert.match(demo.stdout, /spawn/);
});

test("require() loads the package where Node.js can require ES modules", { timeout: 60_000 }, async () => {
  const script = 'const m = require("multiprocessing-ts"); console.log(typeof m.Pool, typeof m.isMain);';
  const { code, stdout, stderr } = await run(process.execPath, ["-e", script], app);
  if ((process.features as { require_module?: boolean }).require_module) {
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "function function");
  } else {
    assert.notEqual(code, 0);
    assert.match(stderr, /ERR_REQUIRE_ESM[\s\S]*import\(\)/);
  }
});

test("the installed command line answers --version and --help", { timeout: 60_000 }, async () => {
  const cli = join(app, "node_modules", ".bin", "multiprocessing-ts");
  const v = await run(cli, ["--version"], app);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), version);
  const help = await run(cli, ["bench", "--help"], app);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /usage: multiprocessing-ts bench/);
});

test("bench from the installed package skips what it cannot run, with the reason", { timeout: 300_000 }, async () => {
  const cli = join(app, "node_modules", ".bin", "multiprocessing-ts");
  // the start-up suite runs programs under tsx, which this project does not have
  const { code, stdout, stderr } = await run(cli, ["bench", "--only", "start", "--quick"], app, 280_000);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /\| tsx \| raw `child_process.fork` \| skipped: tsx is not installed here/);
  assert.match(stdout, /\| node \| `Process` \(spawn\) \| \d+\.\d ms/);
  assert.doesNotMatch(`${stdout}${stderr}`, /NaN|ERR_MODULE_NOT_FOUND|\n\s+at /);
});

test("the quick start compiles with the README's tsconfig.json and runs under node", { timeout: 300_000 }, async () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const tsconfig = JSON.parse(/^```json\n([\s\S]*?)^```$/m.exec(readme)![1]!);
  const dir = join(app, "compiled");
  mkdirSync(dir);
  const primes = readmeExamples().find((e) => e.name === "primes.ts")!;
  writeFileSync(join(dir, "primes.ts"), primes.code);
  // @types/node as the README installs it: this checkout's copy
  tsconfig.compilerOptions.typeRoots = [join(root, "node_modules", "@types")];
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const compiled = await run(process.execPath, [tsc, "-p", "."], dir, 200_000);
  assert.equal(compiled.code, 0, compiled.stdout + compiled.stderr);
  const ran = await run(process.execPath, ["primes.js"], dir);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /\[ 78498, 148933, 216816, 283146 \]/);
});
