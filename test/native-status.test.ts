// Whether the native addon is in use is something a program can ask, and losing it is never silent:
// the first shared object that takes the slow fallback warns once, for the whole program.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));

/** A program that makes spawn-method objects in itself (unless told "child-only") and in a child, and prints the status. */
const program = (
  library: string,
) => `import { Lock, Process, Queue, Value, isMain, nativeAddonStatus } from "${library}";
export function makeMore() { new Lock({ context: "spawn" }); new Value("i", 1, { context: "spawn" }); }
if (isMain(import.meta)) {
  if (process.argv[2] !== "child-only") {
  const lock = new Lock({ context: "spawn" });
  lock.acquireSync();
  lock.release();
  new Value("i", 0, { context: "spawn" });
  new Queue(0, { context: "spawn" });
  }
  const p = new Process({ target: makeMore, context: "spawn" }).start();
  await p.join();
  console.log(JSON.stringify({ status: nativeAddonStatus(), exitcode: p.exitcode }));
}
`;

async function run(dir: string, env: Record<string, string> = {}, args: string[] = []) {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(dir, "main.mjs"), ...args], {
    cwd: dir,
    env: { ...process.env, MULTIPROCESSING_TS_NO_NATIVE: "", MULTIPROCESSING_TS_FALLBACK_WARNED: "", ...env },
    timeout: 50_000,
  });
  const out = JSON.parse(stdout) as { status: { available: boolean; reason?: string }; exitcode: number };
  assert.equal(out.exitcode, 0, stderr);
  return { ...out, warnings: stderr.match(/multiprocessing-ts: warning/g)?.length ?? 0, stderr };
}

describe("native addon status and the fallback warning", { timeout: 120_000 }, () => {
  let unbuilt: string;
  let built: string;
  before(() => {
    // the built package as an install that did not build the addon: its bundle, without build/
    unbuilt = mkdtempSync(join(tmpdir(), "mpts-unbuilt-"));
    const pkg = join(unbuilt, "node_modules", "multiprocessing-ts");
    mkdirSync(join(pkg, "dist"), { recursive: true });
    cpSync(join(root, "dist", "bundle"), join(pkg, "dist", "bundle"), { recursive: true });
    cpSync(join(root, "package.json"), join(pkg, "package.json"));
    writeFileSync(join(unbuilt, "main.mjs"), program("multiprocessing-ts"));
    // and this package, with its addon
    built = mkdtempSync(join(tmpdir(), "mpts-built-"));
    writeFileSync(join(built, "main.mjs"), program(new URL("../dist/bundle/index.js", import.meta.url).href));
  });
  after(() => {
    rmSync(unbuilt, { recursive: true, force: true });
    rmSync(built, { recursive: true, force: true });
  });

  test("without the addon: one warning saying why and how to fix it, and the status says so", async () => {
    const result = await run(unbuilt);
    assert.equal(result.status.available, false);
    assert.match(result.status.reason!, /^not built \(/);
    assert.equal(result.warnings, 1, result.stderr);
    assert.match(result.stderr, /native addon is not built .*100 times slower/s);
    assert.match(result.stderr, /npm rebuild multiprocessing-ts.*"thread" start method/s);
  });

  test("without the addon, a child that is first to take the fallback warns (once)", async () => {
    const result = await run(unbuilt, {}, ["child-only"]);
    assert.equal(result.warnings, 1, result.stderr);
  });

  test("switched off with MULTIPROCESSING_TS_NO_NATIVE=1: no warning; the status gives the reason", async () => {
    const result = await run(unbuilt, { MULTIPROCESSING_TS_NO_NATIVE: "1" });
    assert.deepEqual(result.status, { available: false, reason: "disabled by MULTIPROCESSING_TS_NO_NATIVE=1" });
    assert.equal(result.warnings, 0, result.stderr);
  });

  test("with the addon: available, and no warning", async () => {
    const result = await run(built);
    assert.deepEqual(result.status, { available: true });
    assert.equal(result.warnings, 0, result.stderr);
  });

  // detect-libc's way to tell musl from glibc, a process report, costs a process ~50 ms; it is asked
  // only on a system with musl's loader (installed beside glibc here when musl-tools is)
  const muslLoader = existsSync("/lib") && readdirSync("/lib").some((file) => file.startsWith("ld-musl-"));
  test("loading the addon asks for no process report, in the program or its children", {
    skip: !muslLoader && "no musl loader in /lib: the addon's loader asks for no report here anyway",
  }, async () => {
    const spy = join(built, "spy.mjs");
    const calls = join(built, "reports.txt");
    writeFileSync(
      spy,
      `import { appendFileSync } from "node:fs";
const getReport = process.report.getReport.bind(process.report);
process.report.getReport = (...args) => { appendFileSync(${JSON.stringify(calls)}, process.pid + "\\n"); return getReport(...args); };
`,
    );
    const result = await run(built, { NODE_OPTIONS: `--import=${pathToFileURL(spy).href}` });
    assert.deepEqual(result.status, { available: true });
    assert.equal(existsSync(calls) ? readFileSync(calls, "utf8") : "", "");
  });
});
