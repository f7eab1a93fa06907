// `--import` preloads of the program run in spawn children too, in order, TypeScript ones included.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Runs fixtures/preloaded.ts under tsx with `preloads`; the order they ran in, there and in a child. */
async function orderWith(preloads: string[]): Promise<unknown> {
  const args = [
    "--import",
    "tsx",
    ...preloads.flatMap((p) => ["--import", `./fixtures/${p}`]),
    "fixtures/preloaded.ts",
  ];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: here });
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

test("a spawn child runs the program's JavaScript and TypeScript preloads, in order", { timeout: 60_000 }, async () => {
  const order = await orderWith(["preload-js.mjs", "preload-ts.ts"]);
  assert.deepEqual(order, { parent: ["js", "ts"], child: ["js", "ts"] });
});

test("a TypeScript preload before a JavaScript one keeps its place in a spawn child", { timeout: 60_000 }, async () => {
  const order = await orderWith(["preload-ts.ts", "preload-js.mjs"]);
  assert.deepEqual(order, { parent: ["ts", "js"], child: ["ts", "js"] });
});

test("a TypeScript preload that tsx loads as CommonJS runs in a spawn child", { timeout: 60_000 }, async () => {
  const order = await orderWith(["preload-js.mjs", "commonjs/preload.ts"]);
  assert.deepEqual(order, { parent: ["js", "cjs-ts"], child: ["js", "cjs-ts"] });
});
