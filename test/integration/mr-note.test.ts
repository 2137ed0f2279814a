// The merge request note, end to end: the bundled helper builds the fixture flake in MR pipelines
// and posts through @gitbeaker/rest to a fake GitLab API over loopback. One note per MR, edited in
// place by every pipeline; never from forks; a failure to post is a warning, never a failed job.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeGitlabApi, type FakeGitlabApi } from "../doubles/fake-gitlab-api.ts";
import { PIPELINES } from "../helpers/ci-env.ts";
import { runJob, secretLeaks, type JobRun } from "../helpers/ci-job.ts";
import { makeFixtureFlake } from "../helpers/nix.ts";
import { lines } from "../helpers/run-helper.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const niks3 = useNiks3TestBed({ issuer: PIPELINES.mergeRequest.CI_SERVER_URL });
const idToken = niks3.token;
const NOTE_TOKEN = `glpat-${randomBytes(12).toString("hex")}`;
const BOT = { id: 77, username: "project_42_bot_niks3" };
const ALICE = { id: 5, username: "alice" };
const PROJECT = 42;
const MR = 7;
const MARKER = '<!-- niks3-gitlab job="niks3-build" -->';

let gitlab: FakeGitlabApi;

beforeAll(async () => {
  gitlab = await startFakeGitlabApi({
    tokens: { [NOTE_TOKEN]: BOT, "glpat-alice": ALICE },
    projects: [{ id: PROJECT, path: "acme/widgets", mergeRequests: [MR, 8] }],
  });
});
afterAll(async () => {
  await gitlab?.close();
});

function mrJob(pipelineId: number, flakeDir: string, env: Record<string, string> = {}, pipeline: Record<string, string> = PIPELINES.mergeRequest): Promise<JobRun> {
  return runJob({
    confDir: niks3.confDir,
    binDir: niks3.binDir,
    flakeDir,
    env: {
      ...pipeline,
      CI_API_V4_URL: gitlab.apiUrl,
      CI_JOB_NAME: "niks3-build",
      CI_JOB_URL: `https://gitlab.example.com/acme/widgets/-/jobs/${pipelineId * 10}`,
      CI_PIPELINE_ID: String(pipelineId),
      CI_PIPELINE_URL: `https://gitlab.example.com/acme/widgets/-/pipelines/${pipelineId}`,
      CI_COMMIT_SHA: randomBytes(20).toString("hex"),
      NIKS3_SERVER_URL: niks3.server.url,
      NIKS3_TOKEN: idToken,
      NIKS3_INSTALLABLES: ".#default",
      NIKS3_MR_NOTE_TOKEN_VARIABLE: "MR_NOTE_TOKEN",
      MR_NOTE_TOKEN: NOTE_TOKEN,
      ...env,
    },
  });
}

const botNotes = (iid = MR) => gitlab.notes(PROJECT, iid).filter((note) => note.author.id === BOT.id);
const warnings = (job: JobRun) => lines(job.run.stderr).filter((line) => line.includes("niks3: warning:"));

describe("merge request note", () => {
  it("two pipelines of one MR leave exactly one note, which shows the second run", async () => {
    // A busy MR: more notes than one page, one of them a user quoting our marker.
    for (let i = 0; i < 130; i++) gitlab.seedNote(PROJECT, MR, ALICE, `comment ${i}`);
    gitlab.seedNote(PROJECT, MR, ALICE, `${MARKER}\nquoted from the bot`);
    const flake = makeFixtureFlake();

    const first = await mrJob(1001, flake.dir, { NIKS3_INSTALLABLES: ".#default .#broken" });
    expect(first.run.exitCode, first.run.all).toBe(1);
    expect(first.run.stderr).toContain(`created the note on merge request !${MR}`);
    const [created] = botNotes();
    expect(botNotes()).toHaveLength(1);
    expect(created?.body.startsWith(MARKER)).toBe(true);
    expect(created?.body).toContain("pipeline [#1001]");
    expect(created?.body).toMatch(/\| `\.#broken` \| ❌ failed \|/);
    expect(created?.body).toContain("broken on purpose");

    const second = await mrJob(1002, flake.dir);
    expect(second.run.exitCode, second.run.all).toBe(0);
    expect(second.run.stderr).toContain(`updated the note on merge request !${MR}`);
    const notes = botNotes();
    expect(notes).toHaveLength(1);
    expect(notes[0]?.id).toBe(created?.id);
    expect(notes[0]?.body).toContain("pipeline [#1002]");
    expect(notes[0]?.body).not.toContain("#1001");
    expect(notes[0]?.body).not.toContain(".#broken");
    expect(notes[0]?.body).toMatch(/#### niks3: built 1 of 1 installable, pushed \d+ new paths \(\d+ already cached\)/);
    expect(notes[0]?.body).toMatch(/\| `\.#default` \| ✅ built, pushed \| \d+(\.\d+)? (B|KiB) \| {2}\| `\/nix\/store\/[a-z0-9]{32}-fixture-app` \|/);
    // Nobody else's note was touched, none was added.
    expect(gitlab.notes(PROJECT, MR)).toHaveLength(132);
    expect(gitlab.notes(PROJECT, MR).find((note) => note.body === `${MARKER}\nquoted from the bot`)).toBeDefined();

    const noteRequests = gitlab.requests.filter((r) => r.path.includes("/notes") || r.path === "/api/v4/user");
    expect(new Set(noteRequests.map((r) => r.auth))).toEqual(new Set(["private-token"]));
    for (const job of [first, second]) {
      expect(secretLeaks(job, NOTE_TOKEN)).toEqual([]);
      expect(secretLeaks(job, idToken)).toEqual([]);
    }
  });

  it("never posts from a fork's merge request: no request to GitLab, a notice, exit 0", async () => {
    const before = gitlab.requests.length;
    const fork = await mrJob(2001, makeFixtureFlake().dir, {}, PIPELINES.forkMergeRequest);
    expect(fork.run.exitCode, fork.run.all).toBe(0);
    expect(gitlab.requests.slice(before)).toEqual([]);
    expect(fork.run.stderr).toContain("merge request from a fork: no merge request note is posted");
    expect(gitlab.notes(PROJECT, 8)).toEqual([]);
  });

  it.each([
    { name: "GitLab answers 500", status: 500, says: /could not post the merge request note: GitLab answered 500/ },
    { name: "the token was revoked (401)", status: 401, says: /GitLab answered 401 .*the token is invalid or expired/ },
    { name: "the token's user may not comment (403)", status: 403, says: /GitLab answered 403 .*api scope and at least the Reporter role/ },
  ])("when $name: one warning, the job's exit code is the build's", async ({ status, says }) => {
    gitlab.faults.notes = { status, times: 5 };
    try {
      const job = await mrJob(3000 + status, makeFixtureFlake().dir, {}, { ...PIPELINES.mergeRequest, CI_MERGE_REQUEST_IID: "8" });
      expect(job.run.exitCode, job.run.all).toBe(0);
      expect(warnings(job)).toHaveLength(1);
      expect(warnings(job)[0]).toMatch(says);
      expect(secretLeaks(job, NOTE_TOKEN)).toEqual([]);
    } finally {
      gitlab.faults.notes = undefined;
    }
  });

  it("when the named variable is empty (protected variables are not in MR pipelines): a warning naming it, no request", async () => {
    const before = gitlab.requests.length;
    const job = await mrJob(4001, makeFixtureFlake().dir, { MR_NOTE_TOKEN: "" });
    expect(job.run.exitCode, job.run.all).toBe(0);
    expect(warnings(job)).toHaveLength(1);
    expect(warnings(job)[0]).toContain("mr_note_token_variable names MR_NOTE_TOKEN, but MR_NOTE_TOKEN is empty in this job");
    expect(gitlab.requests.slice(before)).toEqual([]);
  });
});
