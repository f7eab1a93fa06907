/**
 * Every path the library computes from its own location, in one place. The code runs in three
 * layouts, and this module is the one that knows them:
 *
 *   src/internal/paths.ts      the sources, under tsx           entries in src/entries/, modules in src/internal/
 *   dist/internal/paths.js     tsc's per-module output          the same folders under dist/
 *   dist/bundle/chunk-….js     esbuild's bundle (what ships)    every entry beside this chunk
 *
 * In all three the package root is two folders up (scripts/bundle.mjs keeps dist/bundle/ as deep
 * as dist/internal/), so the addon's path is the same everywhere.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = new URL(".", import.meta.url);
/** True in dist/bundle/, where every entry is a file beside this chunk. */
const bundled = !here.pathname.endsWith("/internal/");
/** The extension of the library's own modules here: .ts under tsx, .js when built. */
const ext = /\.[cm]?ts$/.test(new URL(import.meta.url).pathname) ? ".ts" : ".js";

/**
 * The library's own folder (src/, dist/, or dist/bundle/ when built): frames of code there are the
 * library's, not the caller's.
 */
export const libraryRoot = bundled
  ? dirname(fileURLToPath(import.meta.url))
  : dirname(dirname(fileURLToPath(import.meta.url)));

/** A child's entry script: a file to run (its name ends in .js; tsx finds the .ts under src/). */
function script(name: string, folder: string): URL {
  return new URL(bundled ? `./${name}.js` : `../${folder}/${name}.js`, here);
}

/** A module a child imports by URL (to find a function by name): the bundle's entry, or the module itself. */
function module(name: string, path: string): string {
  return new URL(bundled ? `./${name}.js` : `../${path}${ext}`, here).href;
}

/** The entry script of a spawn child. */
export const spawnEntry: URL = script("spawn-entry", "entries");
/** The entry script of a thread child. */
export const threadEntry: URL = script("thread-entry", "entries");
/** The entry script of the fallback agent thread. */
export const agentEntry: URL = script("agent-entry", "entries");
/** The module a manager's process imports for `runManagerServer`. */
export const managerServerModule: string = module("manager-server", "internal/manager/server");
/** The module a cluster worker's local children import for `runClusterTask`. */
export const clusterTaskModule: string = module("cluster-task", "entries/cluster-task");

/**
 * The native addon, in the order tried: the one built by the install, then the one the package ships
 * for this platform and C library (musl's prebuilds sit in `<platform>-<arch>-musl/`). Absolute
 * paths, the package root being two folders up in every layout.
 */
export function nativeAddonPaths(libc: "glibc" | "musl"): string[] {
  const prebuild = `${process.platform}-${process.arch}${libc === "musl" ? "-musl" : ""}`;
  return ["build/Release/mpts_shm.node", `prebuilds/${prebuild}/mpts_shm.node`].map((path) =>
    fileURLToPath(new URL(`../../${path}`, here)),
  );
}
