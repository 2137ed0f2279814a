// Paths and manifest facts of this repository, for tests and scripts.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
export const BUNDLE = `${REPO_ROOT}/dist/niks3-gitlab.mjs`;

const manifest = parse(readFileSync(`${REPO_ROOT}/component.yml`, "utf8")) as { components: string[] };
export const MANIFEST_COMPONENTS: string[] = manifest.components;

export const templatePath = (name: string): string => `${REPO_ROOT}/templates/${name}.yml`;
