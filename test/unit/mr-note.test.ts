// Whether a job posts the merge request note (one row per case of planMrNote's table), and what the
// note says. Posting itself runs against a fake GitLab API in test/integration/mr-note.test.ts.
import { describe, expect, it } from "vitest";
import { readCiContext } from "../../src/ci-context.ts";
import { apiHost, noteMarker, planMrNote, renderMrNote } from "../../src/gitlab/mr-note.ts";
import type { JobSummary } from "../../src/report/summary.ts";
import { PIPELINES } from "../helpers/ci-env.ts";

const API = { CI_API_V4_URL: "https://gitlab.example.com/api/v4" };
const ci = (env: Record<string, string>) => readCiContext({ ...API, ...env }, "/p");

describe("planMrNote", () => {
  it.each([
    { name: "no variable named: no note, nothing said", variable: "", token: "t", env: PIPELINES.mergeRequest, plan: { post: false } },
    { name: "default branch: no note, nothing said", variable: "NOTE", token: "t", env: PIPELINES.defaultBranch, plan: { post: false } },
    {
      name: "fork MR: no note, a notice",
      variable: "NOTE",
      token: "t",
      env: PIPELINES.forkMergeRequest,
      plan: { post: false, info: expect.stringContaining("merge request from a fork") },
    },
    {
      name: "CI_JOB_TOKEN named: a warning that it cannot post",
      variable: "CI_JOB_TOKEN",
      token: "t",
      env: PIPELINES.mergeRequest,
      plan: { post: false, warning: expect.stringContaining("CI_JOB_TOKEN, which cannot post merge request notes") },
    },
    {
      name: "variable empty in the job: a warning about protected variables",
      variable: "NOTE",
      token: undefined,
      env: PIPELINES.mergeRequest,
      plan: { post: false, warning: expect.stringContaining("NOTE is empty in this job: merge request pipelines get no protected variables") },
    },
    {
      name: "same-project MR with a token: posts to the target project's MR",
      variable: "NOTE",
      token: "t",
      env: PIPELINES.mergeRequest,
      plan: { post: true, token: "t", target: { apiUrl: API.CI_API_V4_URL, projectId: "42", iid: "7" } },
    },
  ])("$name", ({ variable, token, env, plan }) => {
    expect(planMrNote(variable, token, ci(env))).toEqual(plan);
  });

  it("without CI_API_V4_URL: a warning", () => {
    const context = readCiContext(PIPELINES.mergeRequest, "/p");
    expect(planMrNote("NOTE", "t", context)).toMatchObject({ post: false, warning: expect.stringContaining("no CI_API_V4_URL") });
  });
});

describe("the note", () => {
  const summary: JobSummary = {
    schema: 1,
    pipeline: "merge-request",
    server_url: "https://niks3.example.com",
    substituter: "https://cache.example.com",
    job: { name: "niks3-build", url: "https://gitlab.example.com/j/1", pipeline_id: "77", pipeline_url: "https://gitlab.example.com/p/77", commit_sha: "0123456789abcdef" },
    push: { planned: true, attempted: true, ok: false, uploaded: 0, cached: 0, pinned: [], error: "server returned 401: Unauthorized", runs: [] },
    notices: [],
    installables: [
      { installable: ".#a|b", ok: true, outputs: { out: "/nix/store/aaaa-a", dev: "/nix/store/bbbb-a-dev" }, closure_size: 2048, pin: undefined, error: undefined },
      { installable: ".#broken", ok: false, outputs: {}, pin: undefined, error: "error: ```boom```" },
    ],
    durations_ms: {},
    exit_code: 1,
  };

  it("starts with the job's marker, lists failures first, and says where it came from", () => {
    const marker = noteMarker("niks3-build");
    const body = renderMrNote(summary, marker);
    const lines = body.split("\n");
    expect(lines[0]).toBe('<!-- niks3-gitlab job="niks3-build" -->');
    expect(lines[1]).toBe("#### niks3: built 1 of 2 installables, push failed");
    expect(lines.slice(3, 7)).toEqual([
      "| installable | status | closure | pin | out path |",
      "|---|---|---|---|---|",
      "| `.#broken` | ❌ failed |  |  |  |",
      "| `.#a\\|b` | ✅ built | 2.00 KiB |  | `/nix/store/aaaa-a`<br>`/nix/store/bbbb-a-dev` |",
    ]);
    expect(body).toContain("Push failed: server returned 401: Unauthorized");
    expect(body).toContain("<details><summary><code>.#broken</code>: end of the Nix log</summary>");
    // The log cannot close the code block it is shown in.
    expect(body).toContain("error: '''boom'''");
    expect(body).toContain("From job [niks3-build](https://gitlab.example.com/j/1), pipeline [#77](https://gitlab.example.com/p/77), commit 01234567.");
  });

  it("the marker cannot end the HTML comment early", () => {
    expect(noteMarker('a-->b"c\nd')).toBe('<!-- niks3-gitlab job="a__b_c_d" -->');
  });

  it("gitbeaker is given the instance URL, which it extends with /api/v4", () => {
    expect(apiHost("https://gitlab.example.com/gitlab/api/v4/")).toBe("https://gitlab.example.com/gitlab");
    expect(() => apiHost("https://gitlab.example.com/api")).toThrow(/does not end in \/api\/v4/);
  });
});
