#!/usr/bin/env node
// The published package's build (`prepack`): dist/ from scratch, without source maps (they would
// point at sources the package does not ship), and the shared-memory addon built here copied to
// prebuilds/<platform>-<arch>/, which the library loads when the install did not build its own.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const run = (file, args) => {
  const result = spawnSync(process.execPath, [file, ...args], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

rmSync(join(root, "dist"), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
run(tsc, ["-p", "tsconfig.build.json", "--sourceMap", "false", "--declarationMap", "false"]);
run(join(root, "scripts", "bundle.mjs"), ["--no-sourcemap"]);

const addon = join(root, "build", "Release", "mpts_shm.node");
if (!existsSync(addon)) run(join(root, "scripts", "build-native.mjs"), []);
const prebuilds = join(root, "prebuilds");
rmSync(prebuilds, { recursive: true, force: true });
if (existsSync(addon)) {
  const dir = join(prebuilds, `${process.platform}-${process.arch}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(addon, join(dir, "mpts_shm.node"));
} else console.log("build-package: no shared-memory addon was built here; the package ships no prebuild");
