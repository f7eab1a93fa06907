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
 * Runs fixtures/preloaded.ts under tsx with `preloads` (flag and file pairs); the order they ran
 * in, there and in a child started with `method`.
 */
async function orderWith(method: string, preloads: [string, string][]): Promise<unknown> {
  const args = [
    "--import",
    "tsx",
    ...preloads.flatMap(([flag, p]) => [flag, `./fixtures/${p}`]),
    "fixtures/preloaded.ts",
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
}
