#!/usr/bin/env node
// Bundles the library for loading: what `import "multiprocessing-ts"` and every child's entry script
// load is a handful of files in dist/bundle/ instead of ~60 modules, which halves the library's
// share of a worker's start-up, and a child's code is one of them (child.js, below). The entries
// share their chunks, so a program has one copy of each module. dist/ keeps tsc's per-module output
// for the declarations and the command-line tools.
//
// `--no-sourcemap` (the published package's build) writes no source maps: they would point at
// sources the package does not ship.
//
// Every path the library computes from its own location is in src/internal/paths.ts, which knows
// both layouts: here every entry sits beside the chunks, and dist/bundle/ is as deep as
// dist/internal/ (the addon is two folders up). An entry added here is named there too.
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outdir = join(root, "dist", "bundle");
const sourcemap = !process.argv.includes("--no-sourcemap");
/** What every build here shares: ES modules for Node.js, packages left to the resolver at run time. */
const common = {
  absWorkingDir: root,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  // class and function names are behaviour (error classes, inspected objects, functions a child
  // looks up by name); esbuild renames a name two modules share, or a class that refers to itself
  keepNames: true,
  sourcemap: sourcemap ? "linked" : false,
  // stack traces need only the positions: without the sources' text the maps load faster
  sourcesContent: false,
  chunkNames: "chunk-[hash]",
  logLevel: "warning",
};
rmSync(outdir, { recursive: true, force: true });

// What a child runs is one file, dist/bundle/child.js: every module the two children import
// statically (thread-child.ts and spawn-child.ts, and what they import in turn), bundled together.
// A new thread or process pays its ES module loader ~1.5-2 ms for every file it loads, and esbuild's
// chunks follow which entries use which statement, which gave a thread child nine files. The rest of
// the bundle imports those modules from child.js, so there is still one copy of each.
const library = (file) => join(root, file);
const childRoots = ["src/entries/thread-child.ts", "src/entries/spawn-child.ts"];
const indexModule = library("src/index.ts");
/** The library's own import `args` names, as a file under src/ (undefined for a package or builtin). */
async function sourceOf(b, args) {
  if (!args.path.startsWith(".") || args.pluginData?.inner) return undefined;
  const found = await b.resolve(args.path, {
    kind: args.kind,
    importer: args.importer,
    resolveDir: args.resolveDir,
    pluginData: { inner: true },
  });
  return found.errors.length ? undefined : found.path;
}
/** The library's index stays a module of its own, which the children import when they need it. */
const indexExternal = {
  name: "index-external",
  setup(b) {
    b.onResolve({ filter: /^\./ }, async (args) =>
      (await sourceOf(b, args)) === indexModule ? { path: "./index.js", external: true } : undefined,
    );
  },
};
const childModules = await build({
  ...common,
  entryPoints: childRoots,
  write: false,
  metafile: true,
  outdir,
  plugins: [indexExternal],
});
const childSet = Object.keys(childModules.metafile.inputs).map(library);
// child.js exports every export of every module in it: two modules exporting one name would lose it
const exported = await build({
  ...common,
  entryPoints: childSet,
  write: false,
  metafile: true,
  outdir,
  plugins: [indexExternal],
});
const owners = new Map();
for (const output of Object.values(exported.metafile.outputs)) {
  if (!output.entryPoint) continue;
  for (const name of output.exports) {
    if (name === "default" || owners.has(name))
      throw new Error(`bundle: ${output.entryPoint} and ${owners.get(name) ?? "export *"} both export ${name}`);
    owners.set(name, output.entryPoint);
  }
}
await build({
  ...common,
  splitting: false,
  stdin: {
    contents: childSet.map((file) => `export * from ${JSON.stringify(file)};`).join("\n"),
    resolveDir: root,
    sourcefile: "child.js",
  },
  outfile: join(outdir, "child.js"),
  plugins: [indexExternal],
});
const inChild = new Set(childSet);
await build({
  ...common,
  entryPoints: {
    index: "src/index.ts",
    tools: "src/tools.ts",
    "spawn-entry": "src/entries/spawn-entry.ts",
    "thread-entry": "src/entries/thread-entry.ts",
    "agent-entry": "src/entries/agent-entry.ts",
    "manager-server": "src/internal/manager/server.ts",
    "cluster-worker": "src/entries/cluster-worker.ts",
    "cluster-task": "src/entries/cluster-task.ts",
  },
  outdir,
  plugins: [
    {
      name: "child-external",
      setup(b) {
        b.onResolve({ filter: /^\./ }, async (args) =>
          inChild.has(await sourceOf(b, args)) ? { path: "./child.js", external: true } : undefined,
        );
      },
    },
  ],
});

// The benchmark harness (the top-level bench/, run by `multiprocessing-ts bench` and `soak`) into
// dist/bench/. The library stays external: the harness imports it by the package's name and the
// tools through dist/tools.js, so it runs the bundle users get. The scripts a child or a peer's
// worker loads by path (and the task modules whose functions our workers import by name) are entries
// of their own, emitted where the harness looks for them, and imported, never copied, by the rest.
const benchOut = join(root, "dist", "bench");
const STANDALONE = [
  "start-child",
  "peers",
  "tasks-min",
  "workload-tasks",
  "shared-tasks",
  "workers/bare-thread",
  "workers/bare-fork",
  "workers/bare-bullmq",
  "workers/peer-task",
  "workers/workerpool-task",
];
const standalone = new Set(STANDALONE.map((name) => join(root, "bench", `${name}.ts`)));
rmSync(benchOut, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: Object.fromEntries(["index", "soak", ...STANDALONE].map((name) => [name, `bench/${name}.ts`])),
  outdir: benchOut,
  plugins: [
    {
      name: "bench-externals",
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (args) => {
          if (args.kind === "entry-point") return undefined;
          const target = join(args.resolveDir, args.path).replace(/\.js$/, ".ts");
          // where the importing code lands, as a folder of bench/ (dist/bench/ mirrors bench/, and
          // dist/ the root): an entry of its own stays in its folder, the rest goes to dist/bench/
          const from = standalone.has(args.importer) ? dirname(args.importer) : join(root, "bench");
          const path = (file) => `./${relative(from, file)}`.replace(/^\.\/\.\.\//, "../");
          if (target === join(root, "src", "tools.ts")) return { path: path(join(root, "tools.js")), external: true };
          if (target.startsWith(join(root, "src")))
            throw new Error(
              `${args.importer}: bench/ imports the library by its name, and the tools from src/tools.ts`,
            );
          if (standalone.has(target)) return { path: path(target.replace(/\.ts$/, ".js")), external: true };
          return undefined;
        });
      },
    },
  ],
});

// tsc's dist/index.js and dist/tools.js forward to the bundle, so the command-line tools (which import
// them) run the same library a program gets from `import "multiprocessing-ts"`, one copy of it.
for (const entry of ["index", "tools"]) {
  writeFileSync(join(root, "dist", `${entry}.js`), `export * from "./bundle/${entry}.js";\n`);
  rmSync(join(root, "dist", `${entry}.js.map`), { force: true });
}

// The names survived (keepNames sets each one at run time: a hot path should not create named
// closures, e.g. `{ settle: (x) => … }` per call, which pay for it every time).
const problems = [];
for (const entry of ["index.js", "manager-server.js"]) {
  const exports = await import(pathToFileURL(join(outdir, entry)).href);
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value === "function" && value.name !== name)
      problems.push(`${entry}: export ${name} is named ${value.name}`);
  }
}
if (problems.length) {
  console.error(`bundle: names changed by bundling:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
