// Reads component.yml and package.json into the compile-time constants src/manifest.ts declares.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export function manifestDefines(root: string): Record<string, string> {
  const manifest: unknown = parse(readFileSync(`${root}/component.yml`, "utf8"));
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as { version: string };
  return {
    __NIKS3_GITLAB_MANIFEST__: JSON.stringify(manifest),
    __NIKS3_GITLAB_VERSION__: JSON.stringify(pkg.version),
  };
}
