/**
 * What a new child inherits: the Node.js flags of the OS process, minus tsx's own (a child registers
 * tsx itself, and only before its first TypeScript import: tsx's start-up costs more than starting
 * the child). A worker thread's own `process.execArgv` lacks the loader flags, so a child takes these
 * values from its parent (see the entry scripts) rather than from `process.execArgv`.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const launchEnvironment = {
  /** The OS process's Node.js flags. */
  execArgv: [...process.execArgv],
  /** The working directory the program started in, against which Node resolved its preloads. */
  cwd: process.cwd(),
  /** URL of tsx's ESM API when the program runs under tsx, null when not, undefined until known. */
  tsxApi: undefined as string | null | undefined,
};

/** Flags and loader for a child of `kind`. */
export interface ChildFlags {
  execArgv: string[];
  /** tsx's ESM API for the child to register before importing TypeScript; undefined if not needed. */
  tsxApi: string | undefined;
  /**
   * URLs of `--import` preloads the child imports itself, in order, once tsx is registered: the
   * first TypeScript preload and those after it. Importing them from the child's entry rather than
   * with `--import` flags lets the child load this library before tsx's hooks (otherwise every one
   * of its modules goes through them) and register tsx the cheap way.
   */
  preloads: string[];
}

const cache = new Map<string, ChildFlags>();

/**
 * A process keeps the program's preloads up to the first TypeScript one as flags and imports the
 * rest itself once tsx is registered (or keeps them all as flags, with tsx's, when one cannot be
 * imported by URL). A thread keeps JavaScript `--require` preloads as flags (Node.js runs those in
 * workers) and imports every `--import` preload itself: Node.js 20 runs none of them in workers.
 */
export function childFlags(kind: "spawn" | "thread"): ChildFlags {
  const hit = cache.get(kind);
  if (hit) return hit;
  const argv = launchEnvironment.execArgv;
  const kept: string[] = [];
  const tsxFlags: string[] = [];
  // Preloads from the first TypeScript one on, as flags and as URLs (undefined: not importable by URL).
  const late: { flag: string; url: string | undefined }[] = [];
  // A thread's TypeScript `--require` and its `--import` preloads, imported by the thread itself
  // (Node.js runs requires first).
  const threadRequires: string[] = [];
  const threadImports: string[] = [];
  let tsxSpec: string | undefined;
  let tsPreload = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    // (--preload is Bun's, which runs its preloads in a spawned Bun but not in its worker threads)
    const m = /^(?:--(import|require|loader|experimental-loader|preload)|-(r))(?:=(.*))?$/.exec(arg);
    if (!m) {
      kept.push(arg);
      continue;
    }
    const option = m[1] ?? "require";
    const value = m[3] ?? argv[i + 1] ?? "";
    if (m[3] === undefined) i++;
    const typescript = /\.[cm]?tsx?$/.test(value);
    // a relative file resolves from where the program started, whatever the directory is now
    const flag = `--${option}=${option === "require" && /^\.{1,2}\//.test(value) ? join(launchEnvironment.cwd, value) : value}`;
    // tsx itself: the package by name, or a file of its package (as the tsx command passes them)
    if (value === "tsx" || value.startsWith("tsx/") || /[/\\]node_modules[/\\]tsx[/\\]/.test(value)) {
      tsxSpec ??= value;
      tsxFlags.push(flag);
    } else if (kind === "spawn") {
      if (typescript) tsPreload = true;
      if (tsPreload) late.push({ flag, url: option === "import" ? esmPreloadUrl(value) : undefined });
      else kept.push(flag);
    } else if (option === "require" && !typescript) kept.push(flag);
    else if (option === "require") threadRequires.push(threadPreloadUrl(value));
    else if (option === "import" || option === "preload") threadImports.push(threadPreloadUrl(value));
  }
  if (launchEnvironment.tsxApi === undefined) {
    launchEnvironment.tsxApi = tsxSpec ? (resolveTsxApi(tsxSpec) ?? null) : null;
  }
  const api = launchEnvironment.tsxApi ?? undefined;
  const lateFlags = late.map((p) => p.flag);
  let flags: ChildFlags;
  if (kind === "thread") flags = { execArgv: kept, tsxApi: api, preloads: [...threadRequires, ...threadImports] };
  else if (!tsxSpec) flags = { execArgv: [...kept, ...lateFlags], tsxApi: undefined, preloads: [] };
  else if (api && late.every((p) => p.url !== undefined)) {
    flags = { execArgv: kept, tsxApi: api, preloads: late.map((p) => p.url!) };
  } else flags = { execArgv: [...tsxFlags, ...kept, ...lateFlags], tsxApi: undefined, preloads: [] };
  cache.set(kind, flags);
  return flags;
}

/**
 * The URL of a file preload (`--import ./setup.ts`, resolved as Node did, from the directory the
 * program started in) that the child can import as ES module; undefined for anything else (a
 * package name, or TypeScript that tsx would load as CommonJS, which needs tsx's flags).
 */
function esmPreloadUrl(specifier: string): string | undefined {
  let url: URL;
  if (specifier.startsWith("file:")) url = new URL(specifier);
  else if (/^\.{0,2}\//.test(specifier)) url = new URL(specifier, pathToFileURL(join(launchEnvironment.cwd, "/")));
  else return undefined;
  const path = fileURLToPath(url);
  if (/\.cjs$/.test(path) || typescriptAsCommonJs(path)) return undefined;
  return url.href;
}

/**
 * What a worker thread imports for a preload: a file as its URL (resolved from the directory the
 * program started in, as Node did); a package as ES modules resolve it from this library's place
 * (which finds the program's own packages when the library is installed among them), else as
 * `require` resolves it from the program's directory, else the specifier itself.
 */
function threadPreloadUrl(specifier: string): string {
  if (specifier.startsWith("file:") || specifier.startsWith("data:") || specifier.startsWith("node:")) return specifier;
  const base = pathToFileURL(join(launchEnvironment.cwd, "/"));
  if (/^\.{0,2}\//.test(specifier)) return new URL(specifier, base).href;
  try {
    return import.meta.resolve(specifier);
  } catch {}
  try {
    return pathToFileURL(createRequire(new URL("noop.js", base)).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}

/** Whether tsx loads the TypeScript file at `path` as CommonJS: `.cts`, or `.ts` outside a `"type": "module"` package. */
export function typescriptAsCommonJs(path: string): boolean {
  return /\.cts$/.test(path) || (/\.tsx?$/.test(path) && !inModulePackage(dirname(path)));
}

/** Whether the nearest package.json above `dir` says `"type": "module"`. */
function inModulePackage(dir: string): boolean {
  for (let at = dir; ; at = dirname(at)) {
    try {
      return (JSON.parse(readFileSync(join(at, "package.json"), "utf8")) as { type?: string }).type === "module";
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") return false;
    }
    if (dirname(at) === at) return false;
  }
}

function resolveTsxApi(spec: string): string | undefined {
  try {
    let pkgJson: string;
    const path = spec.startsWith("file:") ? new URL(spec).pathname : spec;
    const at = path.lastIndexOf("/tsx/");
    if (at >= 0) pkgJson = join(path.slice(0, at + 5), "package.json");
    else pkgJson = createRequire(join(process.cwd(), "noop.js")).resolve("tsx/package.json");
    const pkg = JSON.parse(readFileSync(pkgJson, "utf8")) as {
      exports: Record<string, { import?: { default?: string } | string }>;
    };
    const api = pkg.exports["./esm/api"]?.import;
    const rel = typeof api === "string" ? api : api?.default;
    return rel ? pathToFileURL(join(pkgJson, "..", rel)).href : undefined;
  } catch {
    return undefined;
  }
}
