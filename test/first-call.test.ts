// The first start of a function is on the way to its first result: the parent finds the function's
// module before it sends the task. A function the caller neither exports nor imports by name from a
// relative module is found by asking V8 where it was defined; enabling V8's Debugger for that
// builds the debugger's record of every loaded script (tens of milliseconds of the main thread), so
// the parent asks the profiler's coverage first, which lists the scripts that ran.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { Process } from "multiprocessing-ts";
import { methods } from "./helpers.ts";

const folder = mkdtempSync(join(tmpdir(), "mpts-first-call-"));
after(() => rmSync(folder, { recursive: true, force: true }));

/** The inspector methods any session of this thread posts while `run` runs. */
async function postedDuring(run: () => Promise<void>): Promise<string[]> {
  const posted: string[] = [];
  const post = Session.prototype.post;
  Session.prototype.post = function (this: Session, method: string, ...rest: unknown[]) {
    posted.push(method);
    return (post as (...args: unknown[]) => void).call(this, method, ...rest);
  } as typeof post;
  try {
    await run();
  } finally {
    Session.prototype.post = post;
  }
  return posted;
}

for (const method of methods) {
  describe(`the first start of a function from a module loaded by URL (${method})`, { timeout: 60_000 }, () => {
    test("runs it, and finds its module without enabling V8's Debugger", async () => {
      // a module of its own for each start method: a module whose scripts were looked up once is known
      const module = join(folder, `target-${method}.mjs`);
      writeFileSync(
        module,
        'import { writeFileSync } from "node:fs";\nexport function mark(path) { writeFileSync(path, "ran"); }\n',
      );
      const { mark } = (await import(pathToFileURL(module).href)) as { mark: (path: string) => void };
      const out = join(folder, `ran-${method}`);
      let exitcode: number | null = null;
      const posted = await postedDuring(async () => {
        const p = new Process({ target: mark, args: [out], context: method });
        p.start();
        await p.join();
        exitcode = p.exitcode;
      });
      assert.equal(exitcode, 0);
      assert.equal(readFileSync(out, "utf8"), "ran");
      assert.ok(posted.includes("Runtime.getProperties"), `V8 was asked where the function is (${posted.join(", ")})`);
      assert.ok(!posted.includes("Debugger.enable"), `posted: ${posted.join(", ")}`);
    });
  });
}

/** Whether this process has loaded acorn, the parser a function's source is read with. */
const parserLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes("/acorn/"));

test("a function a bundle exports in an export list starts without its source being parsed", {
  timeout: 60_000,
}, async () => {
  // a bundler writes top-level functions as declarations and exports them in one list at the end;
  // reading the source with a parser (to send it along) cost the first call ~30 ms of the main thread
  const { mark } = (await import(new URL("./fixtures/bundled-mark.mjs", import.meta.url).href)) as {
    mark: (path: string) => void;
  };
  assert.equal(parserLoaded(), false, "an earlier test of this file loaded the parser");
  const out = join(folder, "ran-bundled");
  const p = new Process({ target: mark, args: [out], context: "thread" });
  p.start();
  await p.join();
  assert.equal(p.exitcode, 0);
  assert.equal(readFileSync(out, "utf8"), "ran");
  assert.equal(parserLoaded(), false, "the parent parsed the function's source");
});
