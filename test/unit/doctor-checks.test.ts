// The doctor's conclusions from facts (the probes run for real in test/integration/doctor.test.ts):
// the trust mode table, Nix versions, and what a token check says for each mismatch.
import { describe, expect, it } from "vitest";
import { checkNix, checkToken, checkTrust } from "../../src/doctor/checks.ts";
import { healthFailure } from "../../src/doctor/probes.ts";
import type { UploadFacts } from "../../src/upload/mode.ts";

const facts = (overrides: Partial<UploadFacts>): UploadFacts => ({
  niks3Hook: undefined,
  user: "gitlab-runner",
  groups: ["gitlab-runner"],
  storeWritable: false,
  store: "daemon",
  trustedUsers: ["root"],
  ...overrides,
});

// The doctor says what the jobs will do: the same rule picks their upload mode.
describe("trust mode", () => {
  it.each([
    { name: "root with a writable store: daemon-capable", facts: facts({ user: "root", storeWritable: true, store: "auto" }), says: /^ok: trust: daemon-capable, Nix builds in this job's own store/ },
    { name: "a user named in trusted-users: daemon-capable", facts: facts({ trustedUsers: ["root", "gitlab-runner"] }), says: /^ok: trust: daemon-capable, gitlab-runner is in Nix's trusted-users/ },
    { name: "a member of a trusted @group: daemon-capable", facts: facts({ groups: ["wheel"], trustedUsers: ["@wheel"] }), says: /^ok: trust: daemon-capable/ },
    { name: "an untrusted user of the daemon: store diff", facts: facts({}), says: /^info: trust: store diff, the Nix daemon builds and gitlab-runner is not in its trusted-users/ },
  ])("$name", ({ facts: f, says }) => {
    const finding = checkTrust(f);
    expect(`${finding.level}: ${finding.message}`).toMatch(says);
  });
});

describe("server health", () => {
  it.each([
    { described: "niks3: GET http://h/health failed after 2 attempts: connect ECONNREFUSED 1.2.3.4:9: connect ECONNREFUSED 1.2.3.4:9", says: "failed after 2 attempts: connect ECONNREFUSED 1.2.3.4:9" },
    { described: "HTTP 503", says: "answered HTTP 503" },
  ])("$says", ({ described, says }) => {
    expect(healthFailure(described)).toBe(says);
  });
});

describe("nix", () => {
  it.each([
    { text: "nix (Nix) 2.8.0", level: "ok" },
    { text: "nix (Nix) 2.28.3", level: "ok" },
    { text: "nix (Nix) 2.3.16", level: "problem" },
  ])("$text: $level", ({ text, level }) => {
    expect(checkNix({ found: true, version: text, path: undefined }).level).toBe(level);
  });
});

describe("token", () => {
  const now = Date.parse("2026-09-01T10:00:00Z");
  const exp = now / 1000 + 3600;
  const config = (oidcAudience: string | undefined) => ({ ok: true as const, config: { substituterUrl: "https://c", publicKeys: ["k:1"], oidcAudience } });
  const problems = (claims: Record<string, unknown>, audience: string | undefined, ciServerUrl = "https://gitlab.example.com") =>
    checkToken({ token: { present: true, claims }, ciServerUrl, cacheConfig: config(audience), issuer: String(claims.iss), nowMs: now }).filter(
      (f) => f.level === "problem",
    );

  it("an aud listed among several audiences matches", () => {
    expect(problems({ iss: "https://gitlab.example.com", aud: ["a", "https://niks3.example.com"], exp }, "https://niks3.example.com")).toEqual([]);
  });

  it("a wrong aud names both audiences and the input to change", () => {
    const [finding] = problems({ iss: "https://gitlab.example.com", aud: "x", exp }, "https://niks3.example.com");
    expect(finding?.message).toBe("the token's aud is x but the server's oidc_audience for issuer https://gitlab.example.com is https://niks3.example.com");
    expect(finding?.fix).toMatch(/^set the build component's input audience to https:\/\/niks3\.example\.com/);
  });

  it("prints claim names and values, never the token", () => {
    const lines = checkToken({
      token: { present: true, claims: { iss: "https://gitlab.example.com", aud: "a", ref_protected: "true", user_email: "alice@example.com", exp } },
      ciServerUrl: "https://gitlab.example.com",
      cacheConfig: config("a"),
      issuer: "https://gitlab.example.com",
      nowMs: now,
    }).map((f) => f.message);
    expect(lines).toContain("claim ref_protected = true");
    expect(lines).toContain("claim exp = 2026-09-01T11:00:00.000Z (in 60 min)");
    expect(lines.join("\n")).not.toContain("alice@example.com");
  });
});
