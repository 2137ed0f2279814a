// Reading `nix build --json` for several installables: Nix 2.8 lists the entries by derivation name,
// not in argument order (recorded: the arguments were lib, dep, formatter, app, default).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { matchBuildJson, parseBuildJson } from "../../src/nix/build.ts";

const entries = parseBuildJson(readFileSync(new URL("../fixtures/recorded/nix-build-2.8-several.json", import.meta.url), "utf8"));
const drv = (hash: string, name: string) => `/nix/store/${hash}-fixture-${name}.drv`;
const out = (hash: string, name: string) => ({ out: `/nix/store/${hash}-fixture-${name}` });
const installables = [".#lib", ".#dep", ".#formatter", ".#app", ".#default"];
const drvPaths = [
  drv("sz9ll9c20dhrj75jmfqnsaln4fpafvmd", "lib"),
  drv("gpn9y084bgwqrip9w6fpfxk6d0rzrlmw", "dep"),
  drv("4vqsm4s04m6248yv4jdgpg2basw1nc63", "formatter"),
  drv("ir86sffgw57nkm0ns6mmikmshg8hf26k", "app"),
  drv("ir86sffgw57nkm0ns6mmikmshg8hf26k", "app"),
];

describe("matching nix build --json to installables", () => {
  it("the recorded entries are not in argument order, though there are as many", () => {
    expect(entries).toHaveLength(installables.length);
    expect(entries[0]?.drvPath).not.toBe(drvPaths[0]);
  });

  it("matches by drvPath when the caller knows the derivations", () => {
    expect(matchBuildJson(installables, entries, drvPaths)).toEqual([
      out("3rjzrl6x089ln1rzniyry8vgy854d6fz", "lib"),
      out("7s89qa9kwgy25db0q5xkl8dn41fsjgzc", "dep"),
      out("izfyg7zdg8m6l92dwhillyacp17by54c", "formatter"),
      out("ggwm4as214yi2gbyhmyg2vfgzwmv4b08", "app"),
      out("ggwm4as214yi2gbyhmyg2vfgzwmv4b08", "app"),
    ]);
  });

  it.each([
    { name: "several installables without drvPaths", drvs: undefined },
    { name: "a derivation Nix did not list", drvs: [...drvPaths.slice(0, 4), drv("00000000000000000000000000000000", "x")] },
    { name: "a derivation not known", drvs: [...drvPaths.slice(0, 4), undefined] },
  ])("gives up (the caller asks Nix per installable) for $name", ({ drvs }) => {
    expect(matchBuildJson(installables, entries, drvs)).toBeUndefined();
  });

  it("a single installable needs no drvPath", () => {
    expect(matchBuildJson([".#app"], entries.slice(0, 1))).toEqual([out("ggwm4as214yi2gbyhmyg2vfgzwmv4b08", "app")]);
  });
});
