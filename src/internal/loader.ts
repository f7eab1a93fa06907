/**
 * TypeScript in children without paying for it up front: a child started from a program run under
 * tsx registers tsx's loader just before it imports its first TypeScript module. Registering costs
 * more than starting a worker thread (a loader thread of its own), so a child that runs only
 * JavaScript never pays it.
 */
import { launchEnvironment } from "../backends/environment.js";
import { loaderHooks } from "../reduction.js";
import { trace } from "./debug.js";

const typescript = /\.[cm]?tsx?(\?|$)/;

/** Prepares this child to load TypeScript with tsx's API at `tsxApi` (none when undefined). */
export function useTsxWhenNeeded(tsxApi: string | undefined): void {
  launchEnvironment.tsxApi = tsxApi ?? null;
  if (!tsxApi) return;
  let registered: Promise<void> | undefined;
  loaderHooks.beforeImport = (url) => {
    if (!typescript.test(url)) return undefined;
    registered ??= (async () => {
      // User modules import the library; loading it before tsx's hooks are active is faster.
      trace("loading the library before tsx");
      await import("../index.js");
      trace("importing tsx");
      const api = (await import(tsxApi)) as { register(): unknown };
      trace("registering tsx");
      api.register();
      trace("tsx registered");
    })();
    return registered;
  };
}
