// Writes each component's inputs table into README.md between <!-- inputs:NAME --> markers.
// `node scripts/readme-tables.ts` rewrites them; test/unit/readme.test.ts fails when they drift.
import { readFileSync, writeFileSync } from "node:fs";
import { inputsTable, readComponentSpec } from "./component-spec.ts";
import { parse } from "yaml";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export function renderReadme(readme: string, components: readonly string[]): string {
  let out = readme;
  for (const name of components) {
    const table = inputsTable(readComponentSpec(`${root}/templates/${name}.yml`, name));
    const block = new RegExp(`<!-- inputs:${name} -->[\\s\\S]*?<!-- /inputs:${name} -->`);
    if (!block.test(out)) throw new Error(`README.md has no <!-- inputs:${name} --> block`);
    out = out.replace(block, `<!-- inputs:${name} -->\n${table}\n<!-- /inputs:${name} -->`);
  }
  return out;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const manifest = parse(readFileSync(`${root}/component.yml`, "utf8")) as { components: string[] };
  const path = `${root}/README.md`;
  writeFileSync(path, renderReadme(readFileSync(path, "utf8"), manifest.components));
}
