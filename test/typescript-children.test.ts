// A child transforms TypeScript itself when tsx has no cached output for it (tsx runs esbuild there).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { getContext } from "multiprocessing-ts";
import { methods } from "./helpers.ts";

for (const method of methods) {
  test(`a ${method} child runs TypeScript that tsx has not cached`, { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "mpts-ts-"));
    const saved = process.env.TSX_DISABLE_CACHE;
    try {
      const factor = 1 + Math.floor(Math.random() * 1e6);
      const file = join(dir, "scale.mts");
      writeFileSync(
        file,
        `const factor: number = ${factor};\nexport function scale(x: number): number {\n  return x * factor;\n}\n`,
      );
      const { scale } = (await import(pathToFileURL(file).href)) as { scale: (x: number) => number };
      // the child's tsx starts with an empty cache, so it must transform the module with esbuild
      process.env.TSX_DISABLE_CACHE = "1";
      await using pool = new (getContext(method).Pool)(1);
      assert.equal(await pool.apply(scale, [3]), 3 * factor);
    } finally {
      if (saved === undefined) delete process.env.TSX_DISABLE_CACHE;
      else process.env.TSX_DISABLE_CACHE = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

for (const method of methods) {
  test(`a ${method} child runs a task from TypeScript that tsx loads as CommonJS`, { timeout: 60_000 }, async () => {
    const { quadruple } = (await import("./fixtures/commonjs/task.ts")) as { quadruple: (x: number) => number };
    await using pool = new (getContext(method).Pool)(1);
    assert.equal(await pool.apply(quadruple, [5]), 20);
  });
}
