/**
 * TypeScript in children without paying for it up front: a child started from a program run under
 * tsx registers tsx's loader just before it imports its first TypeScript module. Registering costs
 * more than starting a worker thread (a loader thread of its own), so a child that runs only
 * JavaScript never pays it.
 */
import { readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { fileURLToPath } from "node:url";
import { launchEnvironment, typescriptAsCommonJs } from "../backends/environment.js";
import { loaderHooks } from "../internal/reduction.js";
import { trace } from "../internal/debug.js";

const typescript = /\.[cm]?tsx?(\?|$)/;

/** Prepares this child to load TypeScript with tsx's API at `tsxApi` (none when undefined). */
export function useTsxWhenNeeded(tsxApi: string | undefined): void {
  launchEnvironment.tsxApi = tsxApi ?? null;
  if (!tsxApi) return;
  let registered: Promise<void> | undefined;
  let commonJs = false;
  loaderHooks.beforeImport = (url) => {
    if (!typescript.test(url)) return undefined;
    if (!commonJs && loadsAsCommonJs(url)) {
      commonJs = true;
      registerTsxCommonJs(tsxApi);
    }
    registered ??= (async () => {
      // User modules import the library; loading it before tsx's hooks are active is faster.
      trace("loading the library before tsx");
      await import("../index.js");
      if (registerTsxHooks(tsxApi)) {
        trace("tsx hooks registered");
        return;
      }
      trace("importing tsx");
      const api = (await import(tsxApi)) as { register(): unknown };
      trace("registering tsx");
      api.register();
      trace("tsx registered");
    })();
    return registered;
  };
}

/**
 * Whether tsx loads the TypeScript module at `url` as CommonJS (`.cts`, or `.ts` outside a
 * `"type": "module"` package): its own `require` calls then need tsx's CommonJS hooks as well.
 */
function loadsAsCommonJs(url: string): boolean {
  if (!url.startsWith("file:")) return false;
  return typescriptAsCommonJs(fileURLToPath(url.split("?")[0]!));
}

/** Registers tsx's CommonJS hooks in this thread (its CommonJS API, loaded with `require`). */
function registerTsxCommonJs(tsxApi: string): void {
  try {
    const api = nodeModule.createRequire(import.meta.url)(
      fileURLToPath(new URL("../../cjs/api/index.cjs", tsxApi)),
    ) as {
      register(): unknown;
    };
    api.register();
    trace("tsx's CommonJS hooks registered");
  } catch (error) {
    trace(`tsx's CommonJS hooks could not be registered (${(error as Error).message})`);
  }
}

/**
 * Imports the program's `--import` preloads that the parent left to this child (see `childFlags`),
 * in order, registering tsx first when one is TypeScript.
 */
export async function importPreloads(urls: readonly string[]): Promise<void> {
  for (const url of urls) {
    await loaderHooks.beforeImport?.(url);
    trace(`importing the preload ${url}`);
    await import(url);
  }
}

/**
 * Registers tsx's ESM hooks module directly, with the options its API would pass, without loading
 * tsx's API (and esbuild) into this thread as well as into the hooks thread: that halves what a
 * child spends on tsx. Only where hooks run on their own thread (Node.js without
 * `module.registerHooks`; tsx's API uses in-thread hooks where it exists) and for tsx 4, whose
 * hooks take their options as `data`. False when it does not apply or fails: use tsx's API.
 */
function registerTsxHooks(tsxApi: string): boolean {
  if ("registerHooks" in nodeModule || typeof nodeModule.register !== "function") return false;
  if (!/\/tsx\/dist\/esm\/api\/index\.mjs$/.test(new URL(tsxApi).pathname)) return false;
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", tsxApi), "utf8")) as { version?: string };
    if (!pkg.version?.startsWith("4.")) return false;
    registerEsbuildByRequire();
    nodeModule.register(new URL("../index.mjs", tsxApi).href, { parentURL: import.meta.url, data: {} });
  } catch (error) {
    trace(`registering tsx's hooks directly failed (${(error as Error).message}); using its API`);
    return false;
  }
  process.setSourceMapsEnabled(true);
  return true;
}

/**
 * Hooks, registered before tsx's so that they apply to the loading of tsx's own modules, that give
 * tsx's `import … from "esbuild"` the package loaded with `require`: the same module object and
 * the same named exports, without Node's ES-module wrapper for CommonJS, which scans esbuild's
 * 100 KB source for its export names first (~70 ms of CPU in each child that loads TypeScript).
 * esbuild itself runs only when tsx's cache misses.
 */
const esbuildByRequire = String.raw`
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
const scheme = "multiprocessing-ts-esbuild:";
export async function resolve(specifier, context, next) {
  if (specifier === "esbuild" && /[\\/]node_modules[\\/]tsx[\\/]/.test(context.parentURL ?? "")) {
    try {
      const path = createRequire(context.parentURL).resolve("esbuild");
      return { url: scheme + encodeURIComponent(path), shortCircuit: true };
    } catch {}
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.startsWith(scheme)) return next(url, context);
  const path = decodeURIComponent(url.slice(scheme.length));
  let names;
  try {
    names = Object.keys(createRequire(path)(path)).filter((name) => name !== "default");
  } catch {
    // Node's own way, with its own error
    return next(pathToFileURL(path).href, { ...context, format: "commonjs" });
  }
  const at = JSON.stringify(path);
  let source = "import { createRequire } from 'node:module';\n" +
    "const exports = createRequire(" + at + ")(" + at + ");\nexport default exports;\n";
  names.forEach((name, i) => { source += "const e" + i + " = exports[" + JSON.stringify(name) + "];\n"; });
  if (names.length) source += "export { " + names.map((name, i) => "e" + i + " as " + JSON.stringify(name)).join(", ") + " };\n";
  return { format: "module", source, shortCircuit: true };
}
`;

function registerEsbuildByRequire(): void {
  try {
    nodeModule.register(`data:text/javascript,${encodeURIComponent(esbuildByRequire)}`);
  } catch (error) {
    trace(`esbuild stays an ES-module import (${(error as Error).message})`);
  }
}
