// The fallback agent fails clearly, never hangs, when it cannot run.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

test("without the addon, a primitive from the unbuilt sources says to build instead of hanging", {
  timeout: 60_000,
}, async () => {
  const sources = new URL("../src/index.ts", import.meta.url).href;
  const program = `const { Lock } = await import(${JSON.stringify(sources)});
try { new Lock({ context: "spawn" }).acquireSync(); console.log("acquired"); } catch (e) { console.log(e.message); }`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", program],
    {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, MULTIPROCESSING_TS_NO_NATIVE: "1" },
      timeout: 50_000,
    },
  );
  assert.match(stdout, /agent script .*agent-entry\.js, which is missing: run the built package/);
});
