// A script without the isMain guard gets BootstrapError instead of starting workers without end.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runScript } from "./helpers.ts";

for (const method of ["spawn", "thread"]) {
  test(`an unguarded script fails with advice about isMain (${method})`, { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await runScript("./fixtures/unguarded.ts", [method]);
    assert.notEqual(code, 0);
    assert.match(stderr, /BootstrapError/);
    assert.match(stderr, /isMain\(import\.meta\)/);
    assert.doesNotMatch(stdout, /\[ 2, 4, 6 \]/);
  });
}
