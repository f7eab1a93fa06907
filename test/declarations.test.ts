/**
 * The published declarations name only public types: every name a public module's `.d.ts` takes
 * from the library's internals is one the package exports, so what a user's editor shows can be
 * imported, and an internal shape never leaks into the API (a member that exists for the library
 * itself is marked `@internal`, which the build strips).
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));

/** The names in `{ a, type b, c as d }` lists of `import`/`export` statements, as seen by `side`. */
function names(list: string, side: "local" | "exported"): string[] {
  return list
    .split(",")
    .map((part) => part.trim().replace(/^type\s+/, ""))
    .filter(Boolean)
    .map((part) => {
      const [local, exported] = part.split(/\s+as\s+/);
      return (side === "exported" ? (exported ?? local) : local)!;
    });
}

describe("published declarations", { timeout: 60_000 }, () => {
  it("a public module's .d.ts takes from internal modules only names the package exports", () => {
    const index = readFileSync(join(dist, "index.d.ts"), "utf8");
    const exported = new Set<string>();
    for (const m of index.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
      for (const name of names(m[1]!, "exported")) exported.add(name);
    }
    assert.ok(exported.has("Pool"), "index.d.ts was read");

    const leaks: string[] = [];
    for (const file of readdirSync(dist).filter((f) => f.endsWith(".d.ts"))) {
      const text = readFileSync(join(dist, file), "utf8");
      for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"(\.\/internal\/[^"]+)"/g)) {
        for (const name of names(m[1]!, "local")) {
          if (!exported.has(name)) leaks.push(`${file}: ${name} (from ${m[2]})`);
        }
      }
      for (const m of text.matchAll(/import\("(\.\/internal\/[^"]+)"\)\.(\w+)/g)) {
        if (!exported.has(m[2]!)) leaks.push(`${file}: ${m[2]} (from ${m[1]})`);
      }
    }
    assert.deepEqual(leaks, [], "internal names in the public declarations: export them or mark the member @internal");
  });
});
