#!/usr/bin/env node
// Packs the package (scripts/pack.mjs) and checks the tarball with publint (package.json against
// the files) and arethetypeswrong (the declarations resolve for TypeScript; the package is ESM-only).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pack } from "./pack.mjs";

const destination = mkdtempSync(join(tmpdir(), "mpts-lint-"));
try {
  const tarball = pack(destination);
  execFileSync("npx", ["--no-install", "publint", "run", tarball, "--strict"], { stdio: "inherit" });
  execFileSync("npx", ["--no-install", "attw", tarball, "--profile", "esm-only"], { stdio: "inherit" });
} catch (error) {
  process.exitCode = error.status ?? 1;
} finally {
  rmSync(destination, { recursive: true, force: true });
}
