// A script without the isMain guard gets BootstrapError instead of starting workers without end;
// a guarded one runs its program code once, however its entry was named on the command line.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { methods, runScript } from "./helpers.ts";

for (const method of ["spawn", "thread"]) {
  test(`an unguarded script fails with advice about isMain (${method})`, { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await runScript("./fixtures/unguarded.ts", [method]);
    assert.notEqual(code, 0);
    assert.match(stderr, /BootstrapError/);
    assert.match(stderr, /isMain\(import\.meta\)/);
    assert.doesNotMatch(stdout, /\[ 2, 4, 6 \]/);
  });
}

for (const method of methods) {
  test(`isMain is true for an entry named without its extension, under tsx (${method})`, {
    timeout: 60_000,
  }, async () => {
    const { code, stdout, stderr } = await runScript("./fixtures/guarded", [method]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "[2,4,6]", "the program code ran, once");
  });

  test(`isMain is true for an entry named without its extension, under node (${method})`, {
    timeout: 60_000,
  }, async () => {
    // plain node, without tsx: as `node dist/primes` runs dist/primes.js
    const entry = fileURLToPath(new URL("./fixtures/guarded-js", import.meta.url));
    const child = spawn(process.execPath, [entry, method], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const [code] = await once(child, "exit");
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), "[2,4,6]", "the program code ran, once");
  });
}
