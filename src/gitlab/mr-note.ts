// The merge request note (opt-in): the job's results as one note per merge request and job, found
// again by a hidden marker and edited in place on every pipeline. It is posted through
// @gitbeaker/rest with a token the user keeps in a CI/CD variable they name, because CI_JOB_TOKEN
// cannot post notes (gitlab-org/gitlab#545150). Never from a fork's merge request. Whether to post
// is decided here (pure); failing to post is the caller's warning, never a failed job.

import type { CiContext } from "../ci-context.ts";
import { formatBytes } from "../nix/closure-size.ts";
import { isForkMergeRequest } from "../policy.ts";
import { failuresFirst, wasPushed, type InstallableSummary, type JobSummary } from "../report/summary.ts";
import { plural } from "../log.ts";

export interface MrNoteTarget {
  /** CI_API_V4_URL, e.g. https://gitlab.example.com/api/v4. */
  apiUrl: string;
  /** The merge request's (target) project: CI_MERGE_REQUEST_PROJECT_ID. */
  projectId: string;
  iid: string;
}

export type MrNotePlan =
  | { post: true; target: MrNoteTarget; token: string }
  | { post: false; warning?: string; info?: string };

/**
 * planMrNote decides whether this job posts the note:
 *   no variable named                  → no note, nothing said
 *   not a merge request pipeline       → no note, nothing said
 *   merge request from a fork          → no note, a notice (the token is never used for forks)
 *   the variable is CI_JOB_TOKEN       → no note, a warning (job tokens cannot post notes)
 *   the variable is empty in the job   → no note, a warning (protected variables are not in MR pipelines)
 *   CI_API_V4_URL or the MR ids absent → no note, a warning
 */
export function planMrNote(variable: string, token: string | undefined, ci: CiContext): MrNotePlan {
  if (!variable || !ci.mergeRequest) return { post: false };
  if (isForkMergeRequest(ci)) {
    return { post: false, info: "merge request from a fork: no merge request note is posted (the note token is not used)" };
  }
  if (variable === "CI_JOB_TOKEN") {
    return {
      post: false,
      warning: "mr_note_token_variable is CI_JOB_TOKEN, which cannot post merge request notes: name a variable holding a project access token (api scope, Reporter role)",
    };
  }
  if (!token) {
    return {
      post: false,
      warning: `mr_note_token_variable names ${variable}, but ${variable} is empty in this job: merge request pipelines get no protected variables, so mask it without protecting it`,
    };
  }
  const { iid, projectId } = ci.mergeRequest;
  if (!ci.apiUrl || !iid || !projectId) {
    return { post: false, warning: "no CI_API_V4_URL, CI_MERGE_REQUEST_IID or CI_MERGE_REQUEST_PROJECT_ID in this job: no merge request note" };
  }
  return { post: true, target: { apiUrl: ci.apiUrl, projectId, iid }, token };
}

/** noteMarker: the hidden first line by which a job finds its own note again. */
export function noteMarker(jobName: string | undefined): string {
  const name = (jobName ?? "").replace(/[\r\n"<>]|--/g, "_");
  return `<!-- niks3-gitlab job="${name}" -->`;
}

const html = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");
const code = (text: string) => (text ? `\`${cell(text).replace(/`/g, "'")}\`` : "");

function row(item: InstallableSummary, summary: JobSummary): string {
  const status = item.ok ? (wasPushed(item, summary) ? "✅ built, pushed" : "✅ built") : "❌ failed";
  const size = item.closure_size === undefined || !item.ok ? "" : formatBytes(item.closure_size);
  const paths = item.ok ? Object.values(item.outputs).map(code).join("<br>") : "";
  return `| ${code(item.installable)} | ${status} | ${size} | ${code(item.pin ?? "")} | ${paths} |`;
}

function headline(summary: JobSummary): string {
  const built = summary.installables.filter((item) => item.ok).length;
  const total = summary.installables.length;
  const push = summary.push;
  const pushed = !push.attempted
    ? "nothing pushed"
    : push.ok
      ? `pushed ${push.uploaded} new paths (${push.cached} already cached)`
      : "push failed";
  return `built ${built} of ${plural(total, "installable")}, ${pushed}`;
}

/** renderMrNote: the note's Markdown, marker first, failures first, and where it came from last. */
export function renderMrNote(summary: JobSummary, marker: string): string {
  const job = summary.job ?? {};
  const lines = [
    marker,
    `#### niks3: ${headline(summary)}`,
    "",
    "| installable | status | closure | pin | out path |",
    "|---|---|---|---|---|",
    ...failuresFirst(summary.installables).map((item) => row(item, summary)),
    "",
  ];
  if (summary.push.attempted && !summary.push.ok && summary.push.error) lines.push(`Push failed: ${cell(summary.push.error)}`, "");
  for (const notice of summary.notices) lines.push(`Note: ${cell(notice)}`, "");
  const failed = summary.installables.filter((item) => !item.ok && item.error);
  for (const item of failed) {
    lines.push(`<details><summary><code>${html(item.installable)}</code>: end of the Nix log</summary>`, "", "```", (item.error ?? "").replace(/```/g, "'''"), "```", "</details>", "");
  }
  const from = [
    job.name ? (job.url ? `job [${cell(job.name)}](${job.url})` : `job ${cell(job.name)}`) : undefined,
    job.pipeline_id ? (job.pipeline_url ? `pipeline [#${job.pipeline_id}](${job.pipeline_url})` : `pipeline #${job.pipeline_id}`) : undefined,
    job.commit_sha ? `commit ${job.commit_sha.slice(0, 8)}` : undefined,
  ].filter(Boolean);
  lines.push(`<sub>${from.length ? `From ${from.join(", ")}. ` : ""}This note is updated by every pipeline of this merge request.</sub>`);
  return `${lines.join("\n")}\n`;
}

/** apiHost: gitbeaker wants the instance URL and appends /api/v4 itself. */
export function apiHost(apiUrl: string): string {
  const trimmed = apiUrl.replace(/\/+$/, "");
  if (!trimmed.endsWith("/api/v4")) throw new Error(`CI_API_V4_URL ${apiUrl} does not end in /api/v4`);
  return trimmed.slice(0, -"/api/v4".length);
}

/** describeGitlabError: one line for the warning; never the request (its headers carry the token). */
export function describeGitlabError(error: unknown): string {
  const cause = (error as { cause?: { response?: { status?: unknown } } }).cause;
  const status = typeof cause?.response?.status === "number" ? cause.response.status : undefined;
  const message = error instanceof Error ? error.message.split("\n")[0]?.slice(0, 200) : String(error);
  const hint =
    status === 401
      ? ": the token is invalid or expired"
      : status === 403
        ? ": the token's user may not comment here (a project access token needs the api scope and at least the Reporter role)"
        : status === 404
          ? ": the token cannot see this merge request (is it a token of this project or group?)"
          : "";
  return `${status ? `GitLab answered ${status} (${message})` : message}${hint}`;
}

export interface PostOptions {
  /** Per request; gitbeaker's default is 5 minutes, too long to hold a job. */
  timeoutMs?: number;
}

/**
 * postMrNote creates the note, or edits the one this token's user posted before with the same
 * marker, so a merge request keeps one note per job however many pipelines run.
 */
export async function postMrNote(
  target: MrNoteTarget,
  token: string,
  body: string,
  marker: string,
  options: PostOptions = {},
): Promise<{ action: "created" | "updated"; id: number }> {
  // Loaded only by jobs that post: gitbeaker is the biggest dependency.
  const { Gitlab } = await import("@gitbeaker/rest");
  const api = new Gitlab({ host: apiHost(target.apiUrl), token, queryTimeout: options.timeoutMs ?? 30_000 });
  const me = await api.Users.showCurrentUser();
  const notes = await api.MergeRequestNotes.all(target.projectId, Number(target.iid), { perPage: 100, sort: "desc", orderBy: "created_at" });
  const ours = notes.find((note) => note.author?.id === me.id && typeof note.body === "string" && note.body.startsWith(marker));
  if (ours) {
    await api.MergeRequestNotes.edit(target.projectId, Number(target.iid), ours.id, { body });
    return { action: "updated", id: ours.id };
  }
  const created = await api.MergeRequestNotes.create(target.projectId, Number(target.iid), body);
  return { action: "created", id: created.id };
}
