// `niks3-gitlab doctor` on a matrix of broken setups: the bundled helper against the fake niks3
// server over loopback, with real Nix (or none on PATH). Each broken setup is named as a problem
// with its fix, the exit code is 1, and the token itself is never printed.
import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runJob, secretLeaks } from "../helpers/ci-job.ts";
import { REPO_ROOT } from "../helpers/repo.ts";
import { lines } from "../helpers/run-helper.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";
import { makeToken } from "../helpers/token.ts";

const GITLAB = "https://gitlab.example.com";
const AUDIENCE = "https://niks3.example.com";
const bed = useNiks3TestBed({ issuer: GITLAB, audience: AUDIENCE });
const good = bed.token;

interface Case {
  name: string;
  token?: string | undefined;
  env?: Record<string, string>;
  hideNix?: boolean;
  /** Every problem line, in order (substrings). */
  problems: string[];
  /** Other lines that must be there. */
  says?: string[];
}

const cases: Case[] = [
  {
    name: "a healthy setup",
    token: good,
    problems: [],
    says: [
      "ok: nix (Nix) ",
      "ok: trust: daemon-capable, Nix builds in this job's own store (writable by root), so it runs a post-build-hook: uploads run while building (niks3-hook)",
      "ok: server {server} is up (/health)",
      "ok: cache-config: substituter {server}/cache, 1 public key",
      `claim aud = ${AUDIENCE}`,
      "claim project_path = acme/widgets",
      `ok: the token's iss equals CI_SERVER_URL (${GITLAB})`,
      `ok: the token's aud matches the server's oidc_audience (${AUDIENCE})`,
      "doctor: no problems found",
    ],
  },
  {
    name: "an unreachable server",
    token: good,
    env: { NIKS3_SERVER_URL: "http://127.0.0.1:9" },
    problems: ["problem: cannot reach the niks3 server: GET http://127.0.0.1:9/health failed after 2 attempts: connect ECONNREFUSED 127.0.0.1:9; fix: check the component input server_url (NIKS3_SERVER_URL)"],
    says: ["the token's aud is not compared: the server's cache-config could not be read", "doctor: 1 problem found"],
  },
  {
    name: "a wrong audience",
    token: makeToken({ iss: GITLAB, aud: "https://other.example.com" }),
    problems: [
      `problem: the token's aud is https://other.example.com but the server's oidc_audience for issuer ${GITLAB} is ${AUDIENCE}; fix: set the build component's input audience to ${AUDIENCE} (it sets id_tokens: NIKS3_TOKEN: aud)`,
    ],
  },
  {
    name: "an issuer the server does not know",
    token: makeToken({ iss: "https://gitlab.other.example", aud: AUDIENCE }),
    env: { CI_SERVER_URL: "https://gitlab.other.example" },
    problems: [
      'problem: the niks3 server has no OIDC provider for issuer https://gitlab.other.example (the token\'s iss), so it will refuse this token; fix: add a provider to niks3-server\'s OIDC config with issuer "https://gitlab.other.example" (exactly, no trailing slash) and audience "https://niks3.example.com"',
    ],
  },
  {
    name: "an iss with a trailing slash",
    token: makeToken({ iss: `${GITLAB}/`, aud: AUDIENCE }),
    problems: [`problem: the niks3 server has no OIDC provider for issuer ${GITLAB}/ (the token's iss)`],
    says: [`warning: the token's iss is ${GITLAB}/ but CI_SERVER_URL is ${GITLAB} (they differ only in a trailing slash, which niks3 compares too)`],
  },
  {
    name: "no token",
    token: undefined,
    problems: ["problem: no NIKS3_TOKEN in this job, so nothing can be pushed; fix: give the job `id_tokens: NIKS3_TOKEN: aud: <the server's oidc_audience>`"],
  },
  {
    name: "an expired token",
    token: makeToken({ iss: GITLAB, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) - 600 }),
    problems: ["problem: the token expired at "],
    says: ["claim exp = ", "min ago)"],
  },
  {
    name: "Nix missing from PATH",
    token: good,
    hideNix: true,
    problems: ["problem: nix is not on PATH (command not found); fix: run the job in an image with Nix"],
    says: ["ok: server {server} is up (/health)"],
  },
];

/** runDoctor runs `doctor` in a job against the test bed's server (from the repository's dist/ unless `bundle`). */
function runDoctor({ token, env, hideNix, bundle }: Pick<Case, "token" | "env" | "hideNix"> & { bundle?: string }) {
  const dir = mkdtempSync(join(tmpdir(), "niks3-doctor-"));
  return runJob({
    command: ["doctor"],
    confDir: bed.confDir,
    binDir: dir,
    flakeDir: dir,
    ...(hideNix ? { path: mkdtempSync(join(tmpdir(), "empty-path-")) } : {}),
    ...(bundle ? { bundle } : {}),
    env: {
      GITLAB_CI: "true",
      CI_SERVER_URL: GITLAB,
      NIKS3_SERVER_URL: bed.server.url,
      ...(token ? { NIKS3_TOKEN: token } : {}),
      ...env,
    },
  });
}

describe("niks3-gitlab doctor", () => {
  it.each(cases)("$name", async ({ token, env, hideNix, problems, says }) => {
    const job = await runDoctor({ token, env, hideNix });
    const output = lines(job.run.stderr).filter(Boolean);
    const fill = (text: string) => text.replaceAll("{server}", bed.server.url);
    expect(output.every((line) => line.startsWith("niks3: ")), job.run.all).toBe(true);
    const found = output.filter((line) => line.startsWith("niks3: problem: "));
    expect(found, job.run.all).toHaveLength(problems.length);
    problems.forEach((problem, index) => {
      for (const part of problem.split("; fix: ")) expect(found[index], job.run.all).toContain(fill(part));
      expect(found[index]).toContain("; fix: ");
    });
    for (const line of says ?? []) expect(job.run.stderr, job.run.all).toContain(fill(line));
    expect(job.run.exitCode, job.run.all).toBe(problems.length === 0 ? 0 : 1);
    if (token) expect(secretLeaks(job, token)).toEqual([]);
    // The signature (the part that makes the token a credential) is never printed, not even in part.
    if (token) expect(job.run.all).not.toContain(token.split(".")[2]);
  });

  it("runs from the published files alone, with no node_modules anywhere: what npm installs is the whole helper", async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { files: string[] };
    const published = mkdtempSync(join(tmpdir(), "niks3-published-"));
    for (const entry of [...pkg.files, "package.json"]) cpSync(join(REPO_ROOT, entry), join(published, entry), { recursive: true });
    const job = await runDoctor({ token: good, bundle: join(published, "dist", "niks3-gitlab.mjs") });
    // The server checks load undici, the settings zod, the Nix check execa: all bundled.
    expect(job.run.stderr, job.run.all).toContain(`ok: cache-config: substituter ${bed.server.url}/cache, 1 public key`);
    expect(job.run.stderr, job.run.all).toContain("doctor: no problems found");
    expect(job.run.exitCode, job.run.all).toBe(0);
  });

  it("rejects a missing server_url in one line, exit 2, before checking anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "niks3-doctor-"));
    const job = await runJob({ command: ["doctor"], confDir: bed.confDir, binDir: dir, flakeDir: dir, env: { NIKS3_TOKEN: good } });
    expect(job.run.exitCode).toBe(2);
    expect(lines(job.run.all).filter(Boolean)).toEqual([expect.stringMatching(/^niks3: server_url \(NIKS3_SERVER_URL \/ --server-url\) is required/)]);
  });
});
