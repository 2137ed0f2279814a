// Real gitlab-ci-local runs. gitlab-ci-local resolves `component: $CI_SERVER_FQDN/<path>/NAME@<sha>`
// from the working tree when <path> is the project its git origin names and <sha> is HEAD, so a
// consumer project here is a temp git repo whose origin is this component project and whose
// templates/ is this repo's, next to the consumer's own .gitlab-ci.yml and flake.

import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { REPO_ROOT } from "./repo.ts";

export const COMPONENT_PROJECT = "niks3/niks3-gitlab";
const GCL = `${REPO_ROOT}/node_modules/gitlab-ci-local/dist/index.js`;

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.email=ci@example.com", "-c", "user.name=ci", ...args], { cwd, encoding: "utf8" }).trim();

export interface ConsumerProject {
  dir: string;
  sha: string;
}

/**
 * makeConsumerProject creates the git repo; `files` are written before the single commit. With
 * `dir`, it is made anew at that path, as GitLab reuses a project's build directory.
 */
export function makeConsumerProject(files: Record<string, string>, options: { flakeDir?: string; dir?: string } = {}): ConsumerProject {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "niks3-consumer-"));
  if (options.dir) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  git(dir, "init", "-q", "-b", "main");
  git(dir, "remote", "add", "origin", `https://gitlab.example.com/${COMPONENT_PROJECT}.git`);
  symlinkSync(join(REPO_ROOT, "templates"), join(dir, "templates"));
  if (options.flakeDir) cpSync(join(options.flakeDir, "flake.nix"), join(dir, "flake.nix"));
  writeFileSync(join(dir, ".gitignore"), ".gitlab-ci-local/\n.niks3-gitlab/\n");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", "consumer");
  const sha = git(dir, "rev-parse", "HEAD");
  git(dir, "update-ref", "refs/remotes/origin/main", sha);
  git(dir, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main");
  return { dir, sha };
}

/** commitAll records later edits (gitlab-ci-local needs the component ref to be HEAD). */
export function commitAll(project: ConsumerProject): ConsumerProject {
  git(project.dir, "add", "-A");
  git(project.dir, "commit", "-q", "--allow-empty", "-m", "edit");
  return { ...project, sha: git(project.dir, "rev-parse", "HEAD") };
}

export interface GclResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  all: string;
}

/** runGitlabCiLocal runs gitlab-ci-local with exactly `env` (its shell jobs inherit it). */
export async function runGitlabCiLocal(cwd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<GclResult> {
  const result = await execa(process.execPath, [GCL, ...args], {
    cwd,
    env: { ...env, NO_COLOR: "1" },
    extendEnv: false,
    reject: false,
    all: true,
    stdin: "ignore",
  });
  return { exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr, all: result.all ?? "" };
}

export interface GclJobOptions {
  /** CI/CD variables for the pipeline (predefined ones included, without gitlab-ci-local's warning). */
  variables: Record<string, string>;
  /** Predefined variables GitLab would not set for this pipeline (CI_COMMIT_BRANCH in MR and tag pipelines). */
  unset?: string[];
  /** Run only these jobs; all jobs of the pipeline when empty. */
  jobs?: string[];
}

/**
 * variableArgs passes CI/CD variables with --variable, predefined ones included: they are all named
 * in --ignore-predefined-vars, so that gitlab-ci-local takes them from here without a warning.
 */
export function variableArgs(variables: Record<string, string>): string[] {
  return [
    "--ignore-predefined-vars",
    Object.keys(variables).join(","),
    ...Object.entries(variables).flatMap(([key, value]) => ["--variable", `${key}=${value}`]),
  ];
}

/**
 * runPipeline runs jobs with the shell executor. gitlab-ci-local points CI_PROJECT_DIR at
 * /builds/<project> for jobs with an image, even in the shell executor; GitLab's is the directory
 * the job starts in, so that is what the job gets here too.
 */
export async function runPipeline(project: ConsumerProject, options: GclJobOptions, env: NodeJS.ProcessEnv): Promise<GclResult> {
  const variables = { CI_PROJECT_DIR: project.dir, ...options.variables };
  const args = [
    "--force-shell-executor",
    ...variableArgs(variables),
    ...(options.unset ?? []).flatMap((name) => ["--unset-variable", name]),
    ...(options.jobs ?? []),
  ];
  return runGitlabCiLocal(project.dir, args, env);
}
