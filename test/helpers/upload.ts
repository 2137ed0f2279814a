// Helpers for the upload tests: the upload fixture flake (a chain whose third step fails, and slow
// steps for the bench), and a consumer project whose own job `extends:` the setup component, run
// with gitlab-ci-local's shell executor, the helper bundled from this commit, real Nix and the
// niks3 doubles.

import { dirname } from "node:path";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline, type GclResult } from "./gitlab-ci-local.ts";
import { copyFixtureFlake } from "./nix.ts";
import { BUNDLE } from "./repo.ts";

const UPLOAD_FIXTURE = new URL("../fixtures/upload-flake/flake.nix", import.meta.url);

/** makeUploadFlake copies the upload fixture with a fresh salt (new store paths) into a new dir. */
export function makeUploadFlake(options: { slowCount?: number; slowSeconds?: number } = {}): { dir: string; salt: string } {
  return copyFixtureFlake(UPLOAD_FIXTURE, "niks3-upload-fixture-", {
    "@SLOW_COUNT@": String(options.slowCount ?? 3),
    "@SLOW_SECONDS@": String(options.slowSeconds ?? 0),
  });
}

export interface SetupJobOptions {
  serverUrl: string;
  token: string;
  /** The consumer job's script lines. */
  script: string[];
  /** Extra setup component inputs. */
  inputs?: Record<string, string>;
  /** GitLab's predefined variables for the pipeline (CI_*), passed with --variable. */
  pipeline: Record<string, string>;
  flakeDir: string;
  binDir: string;
  /** NIX_CONF_DIR and friends (nixEnv). */
  nixEnv: NodeJS.ProcessEnv;
}

export interface SetupJobRun {
  result: GclResult;
  projectDir: string;
}

/** runSetupJob runs a job that extends `.niks3` in a fresh consumer project through gitlab-ci-local. */
export async function runSetupJob(options: SetupJobOptions): Promise<SetupJobRun> {
  const inputs = {
    server_url: options.serverUrl,
    helper: `${process.execPath} ${BUNDLE}`,
    ...options.inputs,
  };
  const yaml = [
    "include:",
    `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/setup@$CI_COMMIT_SHA`,
    "    inputs:",
    ...Object.entries(inputs).map(([key, value]) => `      ${key}: ${JSON.stringify(value)}`),
    "",
    "nix-job:",
    "  extends: .niks3",
    "  script:",
    ...options.script.map((line) => `    - ${JSON.stringify(line)}`),
    "",
  ].join("\n");
  const project = makeConsumerProject({ ".gitlab-ci.yml": yaml }, { flakeDir: options.flakeDir });
  // Node 22 first on PATH (the template checks `node`'s version), then the niks3 shims.
  const env = {
    ...options.nixEnv,
    PATH: `${dirname(process.execPath)}:${options.binDir}:${process.env.PATH}`,
    HOME: project.dir,
  };
  const result = await runPipeline(project, { variables: { ...options.pipeline, NIKS3_TOKEN: options.token }, jobs: ["nix-job"] }, env);
  return { result, projectDir: project.dir };
}
