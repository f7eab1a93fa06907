/**
 * Naming the code a worker runs, the way Python pickles a function by reference.
 *
 * Parent side (`codeRef`): a function or class becomes a `CodeRef`: the module that defines it
 * (asked of V8 through the inspector; the caller's module when that is unavailable), its name,
 * whether that module's text exports the name, its source text, and whether that source is
 * self-contained. The parent never imports user modules: importing the entry script while its own
 * top-level `await` is still running would deadlock.
 *
 * Worker side (`resolveCode`): import the module (this is where an unguarded entry script would
 * start processes again, which `BootstrapError` stops), and take the export of that name. A function
 * imported from another module is found among the modules the import loaded. A self-contained
 * function that is exported nowhere is compiled from its source. Anything else fails with an error
 * that names the function and says how to fix it; an anonymous function that captures variables
 * fails at once, in the parent.
 */
import type { Session } from "node:inspector";
import { createRequire, findSourceMap } from "node:module";
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ProcessError } from "../errors.js";
import { capturedNames, functionExpressionSource } from "./free-vars.js";
import { libraryRoot } from "./paths.js";

/** How a worker finds a function or class. */
export interface CodeRef {
  /** The module that defines the function (file URL), if known. */
  module: string | undefined;
  /** Whether that module's source text exports the function's name. */
  exported: boolean;
  /** The function's own name ("" for anonymous functions). */
  name: string;
  /** Source text as a function expression, when the function is self-contained. */
  source: string | undefined;
  /** Full source text, to confirm that an export is the same function. */
  text: string;
  /** Variables the source reads from outside (empty when self-contained). */
  captured: string[];
}

const refs = new WeakMap<Function, CodeRef>();
let workerGlobals: Set<string> | undefined;

/** Globals any worker has; anything else a by-source function reads makes it not self-contained. */
function globals(): Set<string> {
  if (!workerGlobals) {
    workerGlobals = new Set(Object.getOwnPropertyNames(globalThis));
    for (const extra of ["undefined", "NaN", "Infinity", "globalThis", "__name", "process", "console", "Buffer"]) {
      workerGlobals.add(extra);
    }
  }
  return workerGlobals;
}

/** Names one of the library's own exported functions: the worker imports `moduleUrl` for it. */
export function libraryCodeRef(fn: Function, moduleUrl: string): CodeRef {
  return refs.get(fn) ?? exportedRef(fn, moduleUrl, fn.name, Function.prototype.toString.call(fn));
}

/**
 * Describes `fn` for a worker, or throws at once when no worker could ever run it.
 * `what` names the role in messages ("the task function", "target").
 */
export function codeRef(fn: unknown, what: string): CodeRef {
  if (typeof fn !== "function") {
    throw new TypeError(`${what} must be a function (got ${fn === null ? "null" : typeof fn})`);
  }
  const cached = refs.get(fn);
  if (cached) return cached;
  const name = typeof fn.name === "string" ? fn.name : "";
  const text = Function.prototype.toString.call(fn);
  // Most tasks are exported by the module that passes them: then the caller's module, read from
  // the stack, is the answer, and asking V8 (which costs tens of milliseconds the first time) is
  // not needed. A worker that finds a different function under that name searches further.
  const caller = callerModule();
  const callerExports = isIdentifier(name) && caller !== undefined && exportsName(caller, name);
  // Next most common: the caller imported it by name from a relative module that exports it.
  const imported = !callerExports && isIdentifier(name) && caller ? importedFrom(caller, name) : undefined;
  const module = callerExports ? caller : (imported ?? definingModule(fn) ?? caller);
  // A CommonJS module exports at run time (`exports.name = …`, `module.exports = { … }`), which its
  // text does not show: its exports object, in require's cache from the moment it starts, does. The
  // key is the name a worker looks up (it also names an anonymous function assigned there).
  const commonJsName =
    callerExports || module === undefined ? undefined : exportKey(commonJsModules()[shortUrl(module)], fn, name);
  if (commonJsName !== undefined) return exportedRef(fn, module!, commonJsName, text);
  const exported = callerExports || (isIdentifier(name) && module !== undefined && exportsName(module, name));
  const knownModule = module !== undefined && exportScans.get(module) !== "";
  // A function its module declares exported travels by reference alone; anything else (a name
  // only in an export list or behind `export *`, which the text scan cannot confirm) is read, with a
  // parser loaded on first use, to see whether it can also travel by source.
  const declared = exported && exportDeclares(module!, name);
  const expression = declared ? { reason: "" } : functionExpressionSource(fn);
  let source: string | undefined;
  let captured: string[] = [];
  const positions = new Map<string, number>();
  if ("source" in expression) {
    captured = capturedNames(expression.source, globals(), positions);
    if (captured.length === 0) source = expression.source;
  }
  if (!source && (!isIdentifier(name) || (knownModule && !exported))) {
    // the module may be unknown (no inspector, as in Bun) or not the one that exports it: a last
    // look through every CommonJS module loaded, on this path only, which would otherwise throw
    for (const [path, entry] of Object.entries(commonJsModules())) {
      const key = exportKey(entry, fn, name);
      if (key !== undefined) return exportedRef(fn, pathToFileURL(path).href, key, text);
    }
    if ("source" in expression) captured = writtenNames(fn, text, expression.source, captured, positions);
    const why =
      "reason" in expression
        ? expression.reason
        : `it uses ${captured.map((c) => `'${c}'`).join(", ")} from the surrounding code, which a worker does not have`;
    const label = isIdentifier(name) ? `function '${name}'` : "an anonymous function";
    throw new ProcessError(
      `${what} (${label}${module ? ` in ${shortUrl(module)}` : ""}) cannot be sent to a worker: it is not exported, and ${why}. ` +
        "Export it from its module so that workers import it by name, or make it self-contained " +
        "(use only its parameters and globals, and pass other values as arguments).",
    );
  }
  const ref: CodeRef = { module, exported, name, source, text, captured };
  refs.set(fn, ref);
  return ref;
}

/** Remembers that `fn` travels by reference, as `name` exported by `module`. */
function exportedRef(fn: Function, module: string, name: string, text: string): CodeRef {
  const ref: CodeRef = { module, exported: true, name, source: undefined, text, captured: [] };
  refs.set(fn, ref);
  return ref;
}

function isIdentifier(name: string): boolean {
  return /^[A-Za-z_$][\w$]*$/.test(name) && name !== "anonymous" && name !== "default";
}

/** The file URL of the first stack frame outside this library. */
function callerModule(): string | undefined {
  const previous = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 30;
    Error.prepareStackTrace = (_, frames) => frames;
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, callerModule);
    for (const frame of holder.stack ?? []) {
      const file = frame.getFileName();
      if (!file || file.startsWith("node:") || file.startsWith("internal/")) continue;
      const url = file.startsWith("file:") ? file : file.startsWith("/") ? pathToFileURL(file).href : undefined;
      if (!url) continue;
      if (fileURLToPath(url).startsWith(`${libraryRoot}/`)) continue;
      return url;
    }
    return undefined;
  } finally {
    Error.prepareStackTrace = previous;
    Error.stackTraceLimit = limit;
  }
}

// V8 knows where every function was defined: [[FunctionLocation]] gives its script id. What maps
// script ids to URLs is first the profiler's best-effort coverage, which lists the scripts whose
// functions still have feedback (every module that ran, short of what the collector dropped), then
// the Debugger domain: enabling it reports every loaded script, but builds the debugger's record of
// each one on the way (38-62 ms of the main thread's CPU in a program that loaded the library,
// against 8-11 ms for the coverage), and that first `apply()` or `start()` has not sent its task
// yet. Either runs only when a function comes from a script not seen before.
let session: Session | undefined;
const scriptUrls = new Map<string, string>();

function openSession(): void {
  if (session) return;
  session = new (inspector().Session)();
  session.connect();
  session.on("Debugger.scriptParsed", (m) => {
    const params = m.params as { scriptId: string; url: string };
    scriptUrls.set(params.scriptId, params.url);
  });
}

function definingModule(fn: Function): string | undefined {
  try {
    const scriptId = functionLocation(fn)?.scriptId;
    if (scriptId === undefined) return undefined;
    if (!scriptUrls.has(scriptId)) learnScriptUrls(scriptId);
    const url = scriptUrls.get(scriptId);
    if (!url) return undefined;
    if (url.startsWith("file:")) return url;
    return url.startsWith("/") ? pathToFileURL(url).href : undefined;
  } catch {
    return undefined;
  }
}

/** Records the URLs of the loaded scripts, at least of `scriptId` when it has one. */
function learnScriptUrls(scriptId: string): void {
  try {
    const coverage = post("Profiler.getBestEffortCoverage") as { result: { scriptId: string; url: string }[] };
    for (const script of coverage.result) if (script.url) scriptUrls.set(script.scriptId, script.url);
  } catch {
    // an inspector without the Profiler domain: the Debugger below says it all
  }
  if (scriptUrls.has(scriptId)) return;
  post("Debugger.enable");
  post("Debugger.disable");
}

/** V8's [[FunctionLocation]] of `fn`: its script, and where (0-based) its parameters start. */
function functionLocation(fn: Function): { scriptId: string; lineNumber: number; columnNumber: number } | undefined {
  openSession();
  const probe = globalThis as { [probeKey]?: Function };
  probe[probeKey] = fn;
  try {
    const evaluated = post("Runtime.evaluate", {
      expression: `globalThis[Symbol.for("multiprocessing-ts.probe")]`,
    }) as {
      result: { objectId: string };
    };
    const props = post("Runtime.getProperties", { objectId: evaluated.result.objectId, ownProperties: true }) as {
      internalProperties?: {
        name: string;
        value?: { value?: { scriptId: string; lineNumber: number; columnNumber: number } };
      }[];
    };
    post("Runtime.releaseObject", { objectId: evaluated.result.objectId });
    return props.internalProperties?.find((p) => p.name === "[[FunctionLocation]]")?.value?.value;
  } finally {
    delete probe[probeKey];
  }
}

/**
 * The names `captured` have in the code the user wrote. A compiler may rename a variable (tsx's
 * esbuild turns a block's `helper` into `helper2` when another `helper` is in scope); the compiled
 * module's source map (tsx turns source maps on) maps each read back to the original identifier.
 * `positions` says where in `source` (the function's text as an expression) each name is read.
 * Names stay as they are where there is no source map. Only an error message needs this.
 */
function writtenNames(
  fn: Function,
  text: string,
  source: string,
  captured: string[],
  positions: ReadonlyMap<string, number>,
): string[] {
  try {
    const location = functionLocation(fn);
    if (!location) return captured;
    post("Debugger.enable");
    let script: string;
    try {
      script = (post("Debugger.getScriptSource", { scriptId: location.scriptId }) as { scriptSource: string })
        .scriptSource;
    } finally {
      post("Debugger.disable");
    }
    const url = scriptUrls.get(location.scriptId);
    const map = url
      ? (findSourceMap(url) ?? (url.startsWith("file:") ? findSourceMap(fileURLToPath(url)) : undefined))
      : undefined;
    if (!map) return captured;
    const lineStarts = [0];
    for (let i = script.indexOf("\n"); i >= 0; i = script.indexOf("\n", i + 1)) lineStarts.push(i + 1);
    // V8 places a function where its parameters start; its text begins there or a little before
    const at = (lineStarts[location.lineNumber] ?? 0) + location.columnNumber;
    const start = script.lastIndexOf(text, at);
    if (start < 0) return captured;
    // `source` differs from `text` only in how it begins (a method written as a function expression)
    const shift = source.length - text.length;
    return captured.map((name) => {
      const offset = start + positions.get(name)! - shift;
      let line = 0;
      while (line + 1 < lineStarts.length && lineStarts[line + 1]! <= offset) line++;
      const column = offset - lineStarts[line]!;
      const entry = map.findEntry(line, column) as {
        generatedLine?: number;
        generatedColumn?: number;
        originalSource?: string;
        originalLine?: number;
        originalColumn?: number;
        name?: string;
      };
      if (entry.generatedLine !== line || entry.generatedColumn !== column) return name;
      return entry.name ?? identifierAt(entry.originalSource, entry.originalLine, entry.originalColumn) ?? name;
    });
  } catch {
    return captured;
  }
}

/** The identifier at a 0-based line and column of a source file, if there is one. */
function identifierAt(file: string | undefined, line: number | undefined, column: number | undefined) {
  if (!file?.startsWith("file:") || line === undefined || column === undefined) return undefined;
  const text = readFileSync(fileURLToPath(file), "utf8").split("\n")[line];
  const pattern = /[A-Za-z_$][\w$]*/y;
  pattern.lastIndex = column;
  return text === undefined ? undefined : pattern.exec(text)?.[0];
}

const probeKey = Symbol.for("multiprocessing-ts.probe");

/**
 * The function or class `ref` names, found among this process's objects without importing anything:
 * the entry script cannot be imported while its own top-level `await` runs (that import would wait
 * for the very await that waits for it). Costs a walk of the heap, once per function.
 */
export function findLoaded(ref: CodeRef): Function | undefined {
  const probe = globalThis as { [probeKey]?: unknown };
  try {
    openSession();
    const proto = post("Runtime.evaluate", { expression: "Function.prototype" }) as { result: { objectId: string } };
    const all = post("Runtime.queryObjects", { prototypeObjectId: proto.result.objectId }) as {
      objects: { objectId: string };
    };
    post("Runtime.callFunctionOn", {
      objectId: all.objects.objectId,
      functionDeclaration: `function (name, text) {
        globalThis[Symbol.for("multiprocessing-ts.probe")] = this.find(
          (f) => f.name === name && Function.prototype.toString.call(f) === text,
        );
      }`,
      arguments: [{ value: ref.name }, { value: ref.text }],
    });
    post("Runtime.releaseObject", { objectId: all.objects.objectId });
    post("Runtime.releaseObject", { objectId: proto.result.objectId });
    const hit = probe[probeKey];
    return typeof hit === "function" ? hit : undefined;
  } catch {
    return undefined;
  } finally {
    delete probe[probeKey];
  }
}

/** node:inspector, loaded on first use. */
function inspector(): typeof import("node:inspector") {
  return createRequire(import.meta.url)("node:inspector") as typeof import("node:inspector");
}

function post(method: string, params?: object): unknown {
  let result: unknown;
  let failure: Error | null = null;
  session!.post(method, params ?? {}, (error, value) => {
    failure = error;
    result = value;
  });
  if (failure) throw failure;
  return result;
}

/**
 * The module `caller` imports `name` from (`import { name } from "../x.js"`), when that is a relative
 * module whose text exports `name`; undefined otherwise. A wrong guess costs only a search in the
 * worker, which confirms the function by its source text.
 */
function importedFrom(caller: string, name: string): string | undefined {
  const text = moduleText(caller);
  const n = name.replace(/\$/g, "\\$");
  const m = new RegExp(`import\\s*(?:type\\s*)?\\{[^}]*\\b${n}\\b[^}]*\\}\\s*from\\s*["'](\\.{1,2}/[^"']+)["']`).exec(
    text,
  );
  if (!m) return undefined;
  const target = new URL(m[1]!, caller);
  for (const candidate of [target.href, target.href.replace(/\.([cm]?)js$/, ".$1ts")]) {
    if (moduleText(candidate) && exportsName(candidate, name)) return candidate;
  }
  return undefined;
}

function moduleText(url: string): string {
  let text = exportScans.get(url);
  if (text === undefined) {
    try {
      text = readFileSync(fileURLToPath(url), "utf8");
    } catch {
      text = "";
    }
    exportScans.set(url, text);
  }
  return text;
}

const exportScans = new Map<string, string>();

/** Whether the module's source text exports `name` (read as text: the parent never imports it). */
function exportsName(url: string, name: string): boolean {
  const text = moduleText(url);
  const n = name.replace(/\$/g, "\\$");
  return (
    exportDeclares(url, name) ||
    new RegExp(`\\bexport\\s*(?:type\\s*)?\\{[^}]*\\b${n}\\b[^}]*\\}`).test(text) ||
    /\bexport\s*\*/.test(text)
  );
}

let requireCache: NodeJS.Dict<NodeJS.Module> | undefined;

/** require's cache: the CommonJS modules of this thread, by path (one still running included). */
function commonJsModules(): NodeJS.Dict<NodeJS.Module> {
  requireCache ??= createRequire(import.meta.url).cache;
  return requireCache;
}

/** The key under which a CommonJS module exports `fn` (its own name first), if it does so yet. */
function exportKey(entry: NodeJS.Module | undefined, fn: Function, name: string): string | undefined {
  const exports: unknown = entry?.exports;
  if (exports === null || (typeof exports !== "object" && typeof exports !== "function")) return undefined;
  const record = exports as Record<string, unknown>;
  if (isIdentifier(name) && record[name] === fn) return name;
  for (const key of Object.keys(record)) if (record[key] === fn && isIdentifier(key)) return key;
  return undefined;
}

/**
 * Whether the module's text has `export function name` (or class, const, let, var), or declares
 * `name` at the start of a line and lists it under its own name in an export list, which is how a
 * bundler (esbuild, Rollup) writes the module's top-level functions and their exports.
 */
function exportDeclares(url: string, name: string): boolean {
  const n = name.replace(/\$/g, "\\$");
  const text = moduleText(url);
  if (
    new RegExp(
      `\\bexport\\s+(?:default\\s+)?(?:declare\\s+)?(?:abstract\\s+)?(?:async\\s+)?(?:function\\s*\\*?|class|const|let|var)\\s*${n}\\b`,
    ).test(text)
  )
    return true;
  const listed = [...text.matchAll(/\bexport\s*\{([^}]*)\}/g)].some((list) =>
    list[1]!.split(",").some((entry) => entry.trim() === name),
  );
  return listed && new RegExp(`^(?:async\\s+)?(?:function\\s*\\*?\\s*|class\\s+|(?:const|let|var)\\s+)${n}\\b`, "m").test(text);
}

function shortUrl(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side

/** Names the BootstrapError machinery watches while user modules are imported. */
export interface ResolveHooks {
  importing(on: boolean): void;
}

const resolved = new Map<string, Function>();

/** Set by a backend whose workers need a loader before importing some modules (tsx in threads). */
export const loaderHooks: { beforeImport?: (url: string) => Promise<void> | undefined } = {};

async function importModule(url: string): Promise<Record<string, unknown>> {
  await loaderHooks.beforeImport?.(url);
  return (await import(url)) as Record<string, unknown>;
}

/** Finds the function a `CodeRef` names, importing its module if needed. */
export async function resolveCode(ref: CodeRef, hooks: ResolveHooks): Promise<Function> {
  const key = `${ref.module}\u0000${ref.name}\u0000${ref.text}`;
  const hit = resolved.get(key);
  if (hit) return hit;
  let fn: Function | undefined;
  let importError: unknown;
  // A self-contained function its module does not export travels by source alone: importing the
  // module would only run its program code in the worker.
  if (ref.source && !ref.exported) {
    fn = compile(ref);
    resolved.set(key, fn);
    return fn;
  }
  if (ref.module) {
    hooks.importing(true);
    try {
      const ns = await importModule(ref.module);
      fn = pickExport(ns, ref);
    } catch (error) {
      importError = error;
    } finally {
      hooks.importing(false);
    }
    if (importError && (importError as Error).name === "BootstrapError") throw importError;
    if (!fn && !importError && isIdentifier(ref.name)) fn = await searchLoadedModules(ref);
  }
  if (!fn && ref.source) fn = compile(ref);
  if (!fn) {
    if (importError) throw importError;
    const where = ref.module ? ` (passed from ${shortUrl(ref.module)})` : "";
    if (ref.exported) {
      throw new ProcessError(
        `cannot run function '${ref.name}'${where} in a worker: the worker imported its module, but no export of ` +
          "it is this function (the module defines it differently in a worker). Export the function itself " +
          "from a module whose code is the same in every process.",
      );
    }
    throw new ProcessError(
      `cannot run function '${ref.name}'${where} in a worker: it is not exported from its module, and it is not ` +
        `self-contained (it uses ${ref.captured.map((c) => `'${c}'`).join(", ") || "values from its module"}). ` +
        "Export it so that workers import it by name, or make it self-contained.",
    );
  }
  resolved.set(key, fn);
  return fn;
}

function pickExport(ns: Record<string, unknown>, ref: CodeRef): Function | undefined {
  const direct = ns[ref.name];
  if (typeof direct === "function" && Function.prototype.toString.call(direct) === ref.text) return direct;
  for (const value of Object.values(ns)) {
    if (typeof value === "function" && Function.prototype.toString.call(value) === ref.text) return value;
  }
  // A CommonJS module whose export names Node could not list: they are properties of its `default`.
  const commonJs = ns.default;
  if (commonJs !== null && (typeof commonJs === "object" || typeof commonJs === "function")) {
    const value = (commonJs as Record<string, unknown>)[ref.name];
    if (typeof value === "function" && Function.prototype.toString.call(value) === ref.text) return value;
  }
  return undefined;
}

/** A function imported into the caller's module from elsewhere: look through every loaded module. */
async function searchLoadedModules(ref: CodeRef): Promise<Function | undefined> {
  const urls = new Set<string>();
  const session = new (inspector().Session)();
  try {
    session.connect();
    session.on("Debugger.scriptParsed", (m) => {
      const url = (m.params as { url?: string }).url;
      if (url?.startsWith("file:") && !fileURLToPath(url).startsWith(`${libraryRoot}/`)) urls.add(url.split("?")[0]!);
    });
    session.post("Debugger.enable");
    session.post("Debugger.disable");
  } catch {
    return undefined;
  } finally {
    session.disconnect();
  }
  for (const url of urls) {
    try {
      const fn = pickExport(await importModule(url), ref);
      if (fn) return fn;
    } catch {
      // not a module we can import: skip
    }
  }
  return undefined;
}

const nameShim = (target: Function, value: string) =>
  Object.defineProperty(target, "name", { value, configurable: true });

function compile(ref: CodeRef): Function {
  try {
    return new Function("__name", `"use strict"; return (${ref.source});`)(nameShim) as Function;
  } catch (error) {
    throw new ProcessError(`cannot compile function '${ref.name || "anonymous"}' from its source in the worker`, {
      cause: error,
    });
  }
}

/** Rewrites a ReferenceError from a by-source function into advice (the variable was captured). */
export function explainReferenceError(error: unknown, ref: CodeRef): unknown {
  if (!ref.source || ref.module === undefined || !(error instanceof ReferenceError)) return error;
  const m = /^(\S+) is not defined/.exec(error.message);
  if (!m) return error;
  return new ProcessError(
    `function '${ref.name || "anonymous"}' was sent by source and refers to '${m[1]}', which does not exist in the worker. ` +
      "Functions sent by source must be self-contained: export the function from its module, or pass the value as an argument.",
    { cause: error },
  );
}
