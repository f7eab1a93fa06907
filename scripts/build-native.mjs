#!/usr/bin/env node
// Builds the optional shared-memory addon when the package installs. It never fails the install:
// without the addon, processes share memory through the portable fallback instead.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const say = (message) => console.log(`multiprocessing-ts: ${message}`);

if (process.platform !== "linux") {
  say(`the shared-memory addon is Linux-only (this is ${process.platform}); using the portable fallback`);
  process.exit(0);
}
// The package ships the addon prebuilt for some platforms (for musl libc too, which fails to load
// on glibc): where one loads, nothing needs building.
let unloadable;
for (const platform of [`${process.platform}-${process.arch}-musl`, `${process.platform}-${process.arch}`]) {
  const prebuilt = join(root, "prebuilds", platform, "mpts_shm.node");
  if (!existsSync(prebuilt)) continue;
  try {
    createRequire(import.meta.url)(prebuilt);
    say(`using the prebuilt shared-memory addon (${platform})`);
    process.exit(0);
  } catch (error) {
    unloadable = error.message.split("\n")[0];
  }
}
if (unloadable) say(`the prebuilt shared-memory addon does not load here (${unloadable}); building it`);
const npmGyp = process.env.npm_config_node_gyp;
const candidates = [
  npmGyp,
  join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  "/usr/share/nodejs/node-gyp/bin/node-gyp.js",
].filter((p) => p && existsSync(p));
if (!candidates.length) {
  say("node-gyp was not found; using the portable fallback for shared memory between processes");
  process.exit(0);
}
// Node's headers ship with the install here; node-gyp would otherwise try to download them.
const prefix = dirname(dirname(process.execPath));
const args = [candidates[0], "rebuild"];
if (existsSync(join(prefix, "include/node/node_api.h"))) args.push(`--nodedir=${prefix}`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
if (result.status === 0) say("built the shared-memory addon");
else {
  say("could not build the shared-memory addon; using the portable fallback (slower shared memory)");
  if (process.env.MULTIPROCESSING_TS_VERBOSE_BUILD) console.log(result.stdout, result.stderr);
}
