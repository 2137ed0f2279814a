// component.yml is the single source: the templates, the helper's defaults and the README must agree
// with it. Each assertion names what drifted.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { readComponentSpec } from "../../scripts/component-spec.ts";
import { renderReadme } from "../../scripts/readme-tables.ts";
import { ExitCode } from "../../src/errors.ts";
import { MANIFEST, HELPER_VERSION } from "../../src/manifest.ts";
import { SETTINGS } from "../../src/settings-table.ts";
import { MANIFEST_COMPONENTS, REPO_ROOT, templatePath } from "../helpers/repo.ts";

const pkg = JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, "utf8")) as { name: string; version: string; dependencies?: Record<string, string> };
const readme = readFileSync(`${REPO_ROOT}/README.md`, "utf8");
const defaultOf = (component: string, input: string) =>
  readComponentSpec(templatePath(component), component).inputs.find((i) => i.name === input)?.default;

describe("component.yml drift", () => {
  it("lists exactly the templates in templates/", () => {
    const files = readdirSync(`${REPO_ROOT}/templates`).map((f) => f.replace(/\.yml$/, "")).sort();
    expect(files).toEqual([...MANIFEST_COMPONENTS].sort());
  });

  it("names this npm package, and the helper is built from it", () => {
    expect(MANIFEST.package).toBe(pkg.name);
    expect(HELPER_VERSION).toBe(pkg.version);
  });

  it("the package depends on nothing at run time: dist/ is bundled, so the first job fetches the helper alone", () => {
    expect(pkg.dependencies ?? {}).toEqual({});
  });

  it.each(MANIFEST_COMPONENTS)("%s: image, niks3 version and helper defaults come from the manifest", (name) => {
    expect(defaultOf(name, "image")).toBe(MANIFEST.default_image);
    expect(defaultOf(name, "niks3_version")).toBe(MANIFEST.niks3.version);
    expect(defaultOf(name, "helper")).toBe(`niks3_npx ${MANIFEST.package}@${pkg.version}`);
  });

  // setup is a hidden job for the user's own script: its exit code is the user's, and its upload
  // runs in after_script, whose exit code GitLab ignores.
  const scriptComponents = MANIFEST_COMPONENTS.filter((name) => name !== "setup");

  it.each(scriptComponents)("%s: allow_failure lists the helper's push-failed exit code", (name) => {
    const body = readComponentSpec(templatePath(name), name).body;
    const job = Object.values(body)[0] as { allow_failure?: { exit_codes?: number[] } };
    expect(ExitCode.pushFailed).toBe(MANIFEST.exit_codes.push_failed);
    expect(job.allow_failure?.exit_codes).toEqual([MANIFEST.exit_codes.push_failed]);
  });

  it("setup: a hidden job that leaves the user's script and exit codes alone", () => {
    const body = readComponentSpec(templatePath("setup"), "setup").body;
    const [name, job] = Object.entries(body)[0] as [string, Record<string, unknown>];
    expect(name).toBe("$[[ inputs.as ]]");
    expect(defaultOf("setup", "as")).toMatch(/^\./);
    expect(job).not.toHaveProperty("script");
    expect(job).not.toHaveProperty("allow_failure");
    expect(job.before_script).toContain("niks3_helper setup");
    expect(job.after_script).toContain("niks3_helper upload");
  });

  // Components cannot share a file, so each template carries the shell that runs the helper
  // (and bootstraps Node through Nix); the copies must not drift apart.
  const HELPER_FUNCTION = /^# niks3_helper runs the helper[\s\S]*\nniks3_helper\(\) \{\n[\s\S]*\n\}\n$/;
  const scriptsOf = (name: string): string[] => {
    const job = Object.values(readComponentSpec(templatePath(name), name).body)[0] as Record<string, unknown>;
    return ["before_script", "script", "after_script"].flatMap((key) => (job[key] as string[] | undefined) ?? []);
  };

  it("every template runs the helper through the same niks3_helper function", () => {
    const definitions = MANIFEST_COMPONENTS.flatMap((name) => scriptsOf(name).filter((line) => HELPER_FUNCTION.test(line)));
    // setup defines it twice: before_script and after_script run in shells of their own.
    expect(definitions).toHaveLength(MANIFEST_COMPONENTS.length + 1);
    expect(new Set(definitions).size).toBe(1);
    expect(scriptsOf("build")).toContain("niks3_helper ci");
    expect(scriptsOf("warm")).toContain("niks3_helper warm");
    for (const name of MANIFEST_COMPONENTS) expect(scriptsOf(name).join("\n")).not.toMatch(/\$NIKS3_HELPER (ci|warm|setup|upload)/);
  });

  it("the README's include examples use this version of each component", () => {
    const refs = [...readme.matchAll(/niks3-gitlab\/(\w+)@([\w.]+)/g)];
    expect(refs.length).toBeGreaterThan(0);
    for (const [, component, version] of refs) {
      expect(MANIFEST_COMPONENTS).toContain(component);
      expect(version).toBe(pkg.version);
    }
  });

  it("the README's inputs tables equal the templates' spec:inputs (node scripts/readme-tables.ts rewrites them)", () => {
    expect(readme).toBe(renderReadme(readme, MANIFEST_COMPONENTS));
  });

  it("the README's helper table lists every NIKS3_ variable the templates set", () => {
    for (const name of MANIFEST_COMPONENTS) {
      const body = readComponentSpec(templatePath(name), name).body;
      const job = Object.values(body)[0] as { variables?: Record<string, string> };
      for (const variable of Object.keys(job.variables ?? {}).filter((v) => v.startsWith("NIKS3_") && v !== "NIKS3_HELPER")) {
        expect(readme, `${variable} missing from the README`).toContain(`\`${variable}\``);
      }
    }
  });

  it("component.yml parses as the manifest the helper was built with", () => {
    expect(parse(readFileSync(`${REPO_ROOT}/component.yml`, "utf8"))).toEqual(MANIFEST);
  });

  it("the README's helper table lists every setting with its variable and flag", () => {
    for (const spec of Object.values(SETTINGS)) {
      expect(readme, `${spec.env} missing from the README's helper table`).toMatch(new RegExp(`\\| \`${spec.env}\` \\| \`${spec.flag}\` \\|`));
    }
  });
});
