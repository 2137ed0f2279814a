// Parsers tested on recorded output (test/fixtures/recorded/), both JSON shapes of Nix included.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePathInfoJson } from "../../src/nix/path-info.ts";
import { logTail, nixBuildArgs, parseBuildJson } from "../../src/nix/build.ts";
import { niks3PushArgs, parseNiks3Log, pushFailureHint } from "../../src/niks3/push.ts";
import { niks3PinsDeleteArgs, niks3PinsListArgs } from "../../src/niks3/pins.ts";
import { niks3HookServeArgs } from "../../src/upload/hook.ts";
import { resolveSettings } from "../../src/settings.ts";
import { nixConfText, userConfFiles } from "../../src/nix/config.ts";
import { parseCacheConfig, cacheConfigUrl } from "../../src/niks3/cache-config.ts";

const recorded = (name: string) => readFileSync(new URL(`../fixtures/recorded/${name}`, import.meta.url), "utf8");

describe("nix path-info --json", () => {
  it.each(["path-info-nix-2.8.json", "path-info-nix-2.24.json"])("%s: paths, validity and references", (file) => {
    const infos = parsePathInfoJson(recorded(file));
    expect(infos.map((i) => [i.path.slice(44), i.valid])).toEqual([
      ["fixture-dep", true],
      ["fixture-lib", true],
      ["fixture-broken", false],
    ]);
    expect(infos[1]?.references).toEqual(["/nix/store/4lc14784hr279hxisc037lmfkkslpw61-fixture-dep"]);
    expect(infos[1]?.narSize).toBe(184);
  });
});

describe("nix build --json", () => {
  it("reads every output of every installable", () => {
    const entries = parseBuildJson(recorded("nix-build-2.8.json"));
    expect(entries).toHaveLength(2);
    expect(Object.keys(entries[1]?.outputs ?? {})).toEqual(["out", "dev"]);
  });
  it("builds with --keep-going and JSON, never ./result", () => {
    const args = nixBuildArgs([".#a", ".#b"]);
    expect(args).toEqual(expect.arrayContaining(["build", "--json", "--no-link", "--keep-going"]));
    expect(args.slice(-2)).toEqual([".#a", ".#b"]);
  });
  it("keeps the tail of a log", () => {
    expect(logTail(Array.from({ length: 40 }, (_, i) => `l${i}`).join("\n"), 3)).toBe("l37\nl38\nl39");
  });
});

describe("niks3 push", () => {
  it("puts flags before paths (Go's flag package stops at the first path) and the token only as a path", () => {
    const args = niks3PushArgs({ serverUrl: "https://n", tokenPath: "/tmp/t/token", paths: ["/nix/store/a", "/nix/store/b"], pin: "p" });
    expect(args).toEqual(["push", "--server-url", "https://n", "--auth-token-path", "/tmp/t/token", "--pin", "p", "/nix/store/a", "/nix/store/b"]);
    expect(args).not.toContain("--auth-token");
    expect(args).not.toContain("--debug");
  });
  it("reads uploaded, cached and pins from niks3's log", () => {
    expect(parseNiks3Log(recorded("niks3-push-ok.stderr"))).toEqual({ uploaded: 2, cached: 1, pinned: ["acme-widgets-main"], error: undefined });
  });
  it("reads the fatal error and explains a 401", () => {
    const log = parseNiks3Log(recorded("niks3-push-401.stderr"));
    expect(log.error).toBe("pushing paths: creating pending closures: creating pending closure: server returned 401: Unauthorized");
    expect(pushFailureHint(log.error ?? "")).toMatch(/audience.*issuer.*bound_claims/);
  });
});

describe("nix.conf", () => {
  it("adds to the user's substituters and keys instead of replacing them", () => {
    expect(nixConfText({ substituterUrl: "https://c", publicKeys: ["k:1", "k:2"] })).toContain(
      "extra-substituters = https://c\nnarinfo-cache-negative-ttl = 0\nextra-trusted-public-keys = k:1 k:2\n",
    );
  });
  it("keeps the files Nix would read anyway", () => {
    expect(userConfFiles("/ours", { NIX_USER_CONF_FILES: "/a:/b" })).toBe("/ours:/a:/b");
    expect(userConfFiles("/ours", { HOME: "/home/u" })).toBe("/ours:/home/u/.config/nix/nix.conf:/etc/xdg/nix/nix.conf");
    expect(userConfFiles("/ours", { XDG_CONFIG_HOME: "/x", XDG_CONFIG_DIRS: "/d1:/d2" })).toBe(
      "/ours:/x/nix/nix.conf:/d1/nix/nix.conf:/d2/nix/nix.conf",
    );
  });
});

describe("cache-config", () => {
  it("asks for the audience of our issuer", () => {
    expect(cacheConfigUrl("https://n.example/p/", "https://gitlab.com")).toBe(
      "https://n.example/p/api/cache-config?issuer=https%3A%2F%2Fgitlab.com",
    );
  });
  it("accepts a server that knows no issuer", () => {
    expect(parseCacheConfig({ substituter_url: "", public_keys: [] })).toEqual({ substituterUrl: "", publicKeys: [], oidcAudience: undefined });
  });
});

// niks3 --debug dumps HTTP headers, the bearer token included: it must be off unless asked for.
describe("niks3 --debug", () => {
  const debug = resolveSettings({}, { NIKS3_SERVER_URL: "https://n" }, { projectDir: "/p" }).debug;
  const base = { serverUrl: "https://n", tokenPath: "/t/token" };
  const calls = {
    push: (on: boolean) => niks3PushArgs({ ...base, paths: ["/nix/store/a"], debug: on }),
    "pins list": (on: boolean) => niks3PinsListArgs({ ...base, debug: on }),
    "pins delete": (on: boolean) => niks3PinsDeleteArgs({ ...base, name: "p", debug: on }),
    "niks3-hook serve": (on: boolean) =>
      niks3HookServeArgs({ serverUrl: "https://n", tokenScript: "helper token-script", socket: "/s", dbPath: "/q", idleExitSeconds: 0, debug: on }),
  };
  it("is off in the default settings", () => {
    expect(debug).toBe(false);
  });
  it.each(Object.entries(calls))("%s passes it only when asked", (_name, args) => {
    expect(args(debug)).not.toContain("--debug");
    expect(args(true)).toContain("--debug");
  });
});
