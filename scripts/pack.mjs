#!/usr/bin/env node
// Packs the package as `npm publish` would, from a copy of the sources, so that the release build
// (`prepack`) does not replace the dist/ that this checkout's tests and tools are using.
//   node scripts/pack.mjs <destination folder>   prints the tarball's path
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const SOURCES = [
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "binding.gyp",
  "README.md",
  "LICENSE",
  "BENCHMARKS.md",
  "src",
  "bench",
  "scripts",
  "native",
  "build/Release/mpts_shm.node", // the addon this checkout built: the copy need not compile it again
];

/** Packs the package into `destination`; returns the tarball's path. */
export function pack(destination) {
  mkdirSync(destination, { recursive: true });
  const copy = mkdtempSync(join(tmpdir(), "mpts-pack-"));
  try {
    for (const entry of SOURCES)
      if (existsSync(join(root, entry))) cpSync(join(root, entry), join(copy, entry), { recursive: true });
    symlinkSync(join(root, "node_modules"), join(copy, "node_modules"), "dir");
    // the build's own output goes to stderr: this command's output is the tarball's path
    execFileSync("npm", ["pack", "--silent", "--pack-destination", resolve(destination)], {
      cwd: copy,
      stdio: ["ignore", process.stderr, "inherit"],
    });
    const { name, version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    return join(resolve(destination), `${name.replace(/^@/, "").replace("/", "-")}-${version}.tgz`);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv[2]) {
    console.error("usage: node scripts/pack.mjs <destination folder>");
    process.exit(2);
  }
  console.log(pack(process.argv[2]));
}
