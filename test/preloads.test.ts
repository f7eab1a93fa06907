// The program's preloads (`--import`, `--require`, `-r`) run in its children too, in both start
// methods and in order, TypeScript ones included.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { methods } from "./helpers.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

/**
 * Runs fixtures/preloaded.ts (or `program`) under tsx with `preloads` (flag and file pairs, or a
 * flag alone); its last line: for preloaded.ts, the order they ran in, there and in a child
 * started with `method`.
 */
async function orderWith(method: string, preloads: [string, string?][], program = "preloaded.ts"): Promise<unknown> {
  const args = [
    "--import",
    "tsx",
    ...preloads.flatMap(([flag, p]) => (p ? [flag, `./fixtures/${p}`] : [flag])),
    `fixtures/${program}`,
    method,
  ];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: here });
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

for (const method of methods) {
  test(`a ${method} child runs the program's JavaScript and TypeScript preloads, in order`, {
    timeout: 60_000,
  }, async () => {
    const order = await orderWith(method, [
      ["--import", "preload-js.mjs"],
      ["--import", "preload-ts.ts"],
    ]);
    assert.deepEqual(order, { parent: ["js", "ts"], child: ["js", "ts"] });
  });

  test(`a TypeScript preload before a JavaScript one keeps its place in a ${method} child`, {
    timeout: 60_000,
  }, async () => {
    const order = await orderWith(method, [
      ["--import", "preload-ts.ts"],
      ["--import", "preload-js.mjs"],
    ]);
    assert.deepEqual(order, { parent: ["ts", "js"], child: ["ts", "js"] });
  });

  test(`a TypeScript preload that tsx loads as CommonJS runs in a ${method} child`, { timeout: 60_000 }, async () => {
    const order = await orderWith(method, [
      ["--import", "preload-js.mjs"],
      ["--import", "commonjs/preload.ts"],
    ]);
    assert.deepEqual(order, { parent: ["js", "cjs-ts"], child: ["js", "cjs-ts"] });
  });

  test(`--require and -r preloads run in a ${method} child, before the --import ones as in Node.js`, {
    timeout: 60_000,
  }, async () => {
    const order = await orderWith(method, [
      ["--import", "preload-js.mjs"],
      ["--require", "preload-cjs.cjs"],
      ["-r", "preload-cjs.cjs"],
    ]);
    // the same file required twice runs once
    assert.deepEqual(order, { parent: ["cjs", "js"], child: ["cjs", "js"] });
  });

  test(`--require preloads reach a ${method} child beside a flag workers do not take`, {
    timeout: 60_000,
  }, async () => {
    const order = await orderWith(method, [["--max-old-space-size=300"], ["--require", "preload-cjs.cjs"]]);
    assert.deepEqual(order, { parent: ["cjs"], child: ["cjs"] });
  });

  test(`a preload that fails in ${method} children breaks the pool instead of restarting workers`, {
    timeout: 60_000,
  }, async () => {
    const outcome = (await orderWith(method, [["--import", "preload-fails-in-children.mjs"]], "preload-broken.ts")) as {
      name: string;
      message: string;
    };
    assert.equal(outcome.name, "BrokenProcessPool");
    assert.match(
      outcome.message,
      method === "thread" ? /this preload fails in children/ : /exited with code 1 before it could start/,
    );
  });

  test(`a TypeScript --require preload runs in a ${method} child`, { timeout: 60_000 }, async () => {
    const order = await orderWith(method, [["--require=tsx/cjs"], ["--require", "commonjs/preload.ts"]]);
    assert.deepEqual(order, { parent: ["cjs-ts"], child: ["cjs-ts"] });
  });
}
