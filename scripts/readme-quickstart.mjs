// Writes the README's quick start, in TypeScript and in JavaScript, into the folder given as
// quickstart-ts.ts and quickstart-js.mjs, each followed by a line that prints "OK <name>" once the
// program's own code has run (the acceptance examples' convention), for scripts/acceptance-runtimes.sh.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dest = process.argv[2];
const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const section = readme.slice(readme.indexOf("## Quick start"));
for (const [lang, file] of [
  ["ts", "quickstart-ts.ts"],
  ["js", "quickstart-js.mjs"],
]) {
  const block = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(section)?.[1];
  if (!block?.includes("isMain(import.meta)")) {
    console.error(`readme-quickstart: README.md's quick start has no \`\`\`${lang} block with an isMain guard`);
    process.exit(1);
  }
  const name = file.replace(/\.[^.]+$/, "");
  writeFileSync(join(dest, file), `${block}\nif (isMain(import.meta)) console.log("OK ${name}");\n`);
}
