/**
 * The layers of src/ and of the benchmark harness beside it (bench/): every import points down the
 * stack below, or stays in its own room, and no import circle exists (type-only imports and
 * `import()` count: a circle through types is still a design loop). A room is a folder of
 * src/internal/ or src/, or one of the named files; the harness is one room on top, and its import
 * of the package by name (`"multiprocessing-ts"`) counts as one of index.ts.
 *
 * Moving a room on purpose means editing STACK, and saying why in the commit.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

/** Bottom first; a room may import its own files and any room of a lower floor. */
const STACK: string[][] = [
  ["errors.ts", "util.ts"],
  ["internal"], // the core: runtime, validation, reduction, paths, waits
  ["internal/shm"], // shared memory: blocks, the addon, the ring, the typecodes
  ["internal/wire"], // what crosses a boundary: codec, framing, sockets, messages, the object broker
  ["internal/manager"], // the manager's server side, its referents, the no-addon fallback
  ["internal/queue", "internal/sync", "internal/pool"], // the flavors and the local pool engine
  ["internal/cluster"], // the remote pool engine
  ["backends"], // start methods and their registry
  ["public"], // the public modules
  ["context.ts"],
  ["index.ts"],
  ["tools.ts", "entries"], // what a child, the agent or a bundle starts from
  ["demo"],
  ["cli.ts"],
  ["bench"], // the top-level bench/: the library by its name, the tools through tools.ts
];

const src = fileURLToPath(new URL("../src/", import.meta.url));
const bench = fileURLToPath(new URL("../bench/", import.meta.url));
/** What the package's own name resolves to, as a file of src/. */
const SELF: Record<string, string> = { "multiprocessing-ts": "index.ts" };

/** The room of a file given relative to src/ (posix separators; bench/ is `../bench/…`). */
function roomOf(file: string): string {
  if (file.startsWith("../bench/")) return "bench";
  const parts = file.split("/");
  if (parts[0] === "internal") return parts.length > 2 ? `internal/${parts[1]}` : "internal";
  if (parts.length > 1) return parts[0]!;
  return STACK.some((floor) => floor.includes(file)) ? file : "public";
}

function floorOf(room: string): number {
  const floor = STACK.findIndex((rooms) => rooms.includes(room));
  assert.notEqual(floor, -1, `the room ${room} has no floor in STACK: add it there`);
  return floor;
}

/** Every module specifier of a file: `from "…"` (imports and re-exports), `import "…"`, `import("…")`. */
export function specifiers(text: string): string[] {
  // comments may quote imports, and so may a single-quoted string (the sources quote with double
  // quotes, so one holds a snippet of code, e.g. an error message's example): both are dropped
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:"'`])\/\/.*$/gm, "$1")
    .replace(/'(?:[^'\\\n]|\\.)*'/g, "''");
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'`]([^"'`]+)["'`]/g)].map((m) => m[1]!);
}

/** The import graph of `files` (path relative to src/ → text): relative imports only. */
function graph(files: Map<string, string>): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const [file, text] of files) {
    const targets: string[] = [];
    for (const spec of specifiers(text)) {
      if (Object.hasOwn(SELF, spec)) targets.push(SELF[spec]!);
      if (!spec.startsWith(".")) continue;
      // relative to src/ through a root of its own, so that bench/'s `../src/x.ts` comes back as `x.ts`
      const target = posix.relative("/r/src", posix.join("/r/src", posix.dirname(file), spec)).replace(/\.js$/, ".ts");
      assert.ok(files.has(target), `${file} imports ${spec}, which is no file of src/ or bench/`);
      targets.push(target);
    }
    edges.set(file, targets);
  }
  return edges;
}

/** What breaks the layers: each upward import, and each circle (as the files along it). */
export function check(files: Map<string, string>): string[] {
  const edges = graph(files);
  const problems: string[] = [];
  for (const [file, targets] of edges) {
    const from = roomOf(file);
    for (const target of targets) {
      const to = roomOf(target);
      if (to !== from && floorOf(to) >= floorOf(from)) {
        problems.push(`${file} (${from}) imports ${target} (${to}), which is not on a floor below`);
      }
    }
  }
  // circles: a depth-first walk, reporting each back edge's loop once
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const target of edges.get(file) ?? []) {
      if (state.get(target) === "open")
        problems.push(`circle: ${[...path.slice(path.indexOf(target)), target].join(" → ")}`);
      else if (!state.has(target)) visit(target);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of [...edges.keys()].sort()) if (!state.has(file)) visit(file);
  return problems;
}

/** Every .ts file of src/ and bench/, by its path relative to src/. */
function sources(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts"))
        files.set(relative(src, path).split("\\").join("/"), readFileSync(path, "utf8"));
    }
  };
  walk(src);
  walk(bench);
  return files;
}

describe("layers", { timeout: 60_000 }, () => {
  it("every import of src/ and bench/ points down, and none closes a circle", () => {
    assert.deepEqual(check(sources()), []);
  });

  it("finds an upward import, an import(), an import by the package's name and a circle planted in src/", () => {
    const files = sources();
    const codec = files.get("internal/wire/codec.ts")!;
    files.set("internal/wire/codec.ts", `${codec}\nimport type { Pool } from "../../pool.js";\n`);
    const framing = files.get("internal/wire/framing.ts")!;
    files.set("internal/wire/framing.ts", `${framing}\nconst lib = () => import("../../index.js");\n`);
    // the package by its name, and the harness on top
    const sockets = files.get("internal/wire/sockets.ts")!;
    files.set("internal/wire/sockets.ts", `${sockets}\nimport { Queue } from "multiprocessing-ts";\n`);
    const cliText = files.get("cli.ts")!;
    files.set("cli.ts", `${cliText}\nawait import("../bench/index.ts");\n`);
    // two files of one room that import each other
    files.set("internal/wire/loop-a.ts", 'export { b } from "./loop-b.js";\n');
    files.set("internal/wire/loop-b.ts", 'import { a } from "./loop-a.js";\nexport const b = a;\n');
    const problems = check(files);
    for (const expected of [
      "internal/wire/codec.ts (internal/wire) imports pool.ts (public)",
      "internal/wire/framing.ts (internal/wire) imports index.ts (index.ts)",
      "internal/wire/sockets.ts (internal/wire) imports index.ts (index.ts)",
      "cli.ts (cli.ts) imports ../bench/index.ts (bench)",
      "circle: internal/wire/loop-a.ts → internal/wire/loop-b.ts",
    ])
      assert.ok(
        problems.some((p) => p.startsWith(expected)),
        `${expected} is not among:\n${problems.join("\n")}`,
      );
  });

  it("reads every form of import, and none in a comment", () => {
    const text = [
      'import { a } from "./a.js";',
      'import type { B } from "./b.js";',
      'export { c } from "./c.js";',
      'export * from "./d.js";',
      'import "./e.js";',
      'const f = await import("./f.js");',
      'type G = typeof import("./g.js");',
      '// import { x } from "./x.js";',
      '/** `import { y } from "./y.js"` */',
      "const example = 'import { z } from \"./z.js\";';",
    ].join("\n");
    assert.deepEqual(specifiers(text), ["./a.js", "./b.js", "./c.js", "./d.js", "./e.js", "./f.js", "./g.js"]);
  });
});
