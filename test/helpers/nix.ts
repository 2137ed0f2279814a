// Real Nix for tests: a private nix.conf (offline, no sandbox, no substituters of its own), fixture
// flakes with store paths unique to each test, and store clean-up.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

const FIXTURE = new URL("../fixtures/flake/flake.nix", import.meta.url);

/** testNixConfDir: a NIX_CONF_DIR whose nix.conf builds offline, without a sandbox, with no substituters. */
export function testNixConfDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "niks3-test-nixconf-"));
  writeFileSync(
    join(dir, "nix.conf"),
    ["substituters =", "sandbox = false", "experimental-features = nix-command flakes", "connect-timeout = 2", ""].join("\n"),
  );
  return dir;
}

/**
 * copyFixtureFlake copies a fixture's flake.nix into a new directory with a fresh @SALT@, so its store
 * paths are new to the store, and its other placeholders replaced.
 */
export function copyFixtureFlake(fixture: URL, prefix: string, placeholders: Record<string, string> = {}, parent?: string): { dir: string; salt: string } {
  const dir = mkdtempSync(join(parent ?? tmpdir(), prefix));
  const salt = randomBytes(8).toString("hex");
  mkdirSync(dir, { recursive: true });
  const text = Object.entries({ "@SALT@": salt, ...placeholders }).reduce((flake, [name, value]) => flake.replace(name, value), readFileSync(fixture, "utf8"));
  writeFileSync(join(dir, "flake.nix"), text);
  return { dir, salt };
}

/** makeFixtureFlake copies the fixture flake with a fresh salt, so its store paths are new to the store. */
export function makeFixtureFlake(parent?: string): { dir: string; salt: string } {
  return copyFixtureFlake(FIXTURE, "niks3-fixture-", {}, parent);
}

export function nixEnv(confDir: string): NodeJS.ProcessEnv {
  const { NIX_USER_CONF_FILES: _ignored, ...env } = process.env;
  return { ...env, NIX_CONF_DIR: confDir, NIX_USER_CONF_FILES: join(confDir, "no-user.conf") };
}

/** closureOf lists the runtime closure of store paths. */
export function closureOf(paths: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out = execFileSync("nix-store", ["-qR", ...paths], { env, encoding: "utf8" });
  return out.split("\n").filter(Boolean).sort();
}

/** deleteFromStore removes paths (and their referrers' outputs must already be gone or listed too). */
export function deleteFromStore(paths: readonly string[], env: NodeJS.ProcessEnv): void {
  execFileSync("nix-store", ["--delete", ...paths], { env, stdio: "pipe" });
}

export function isValidPath(path: string, env: NodeJS.ProcessEnv): boolean {
  try {
    execFileSync("nix-store", ["--check-validity", path], { env, stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}
