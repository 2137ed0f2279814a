// The helper refuses an older Node.js in one line, instead of an "internal error" on a missing
// built-in halfway through a job.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MIN_NODE_MAJOR, unsupportedNode } from "../../src/node-version.ts";
import { REPO_ROOT } from "../helpers/repo.ts";

describe("the Node.js the helper runs on", () => {
  it.each([
    ["v20.20.2", "niks3-gitlab needs Node.js 22 or later; this is Node.js v20.20.2"],
    ["v18.19.1", "niks3-gitlab needs Node.js 22 or later; this is Node.js v18.19.1"],
    ["v21.7.3", "niks3-gitlab needs Node.js 22 or later; this is Node.js v21.7.3"],
    ["v22.0.0", undefined],
    ["v24.11.1", undefined],
    ["v100.0.0", undefined],
  ])("%s: %s", (version, complaint) => {
    expect(unsupportedNode(version)).toBe(complaint);
  });

  it("is the version package.json's engines names", () => {
    const pkg = JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, "utf8")) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE_MAJOR}`);
  });
});
