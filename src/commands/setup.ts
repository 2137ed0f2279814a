// `niks3-gitlab setup`: the setup component's before_script. Configures Nix to pull from the cache,
// picks the upload mode and starts uploading (niks3-hook, detached so it outlives this process, or
// the store listing for a diff), saves the state for `niks3-gitlab upload` (after_script), and
// writes the env file the before_script sources so that the user's own `nix` commands read our
// nix.conf (NIX_USER_CONF_FILES: the substituter and, in daemon mode, the post-build-hook).

import type { CommandContext } from "../job/context.ts";
import { prepareJob } from "../job/prepare.ts";
import type { RawSettings } from "../settings.ts";
import { beginJobUpload } from "../job/upload.ts";
import { ENV_FILE, saveUploadState, writeEnvFile } from "../upload/state.ts";

export async function runSetup(flags: RawSettings, context: CommandContext): Promise<number> {
  // The user's script decides what to build; the plan has no installables of its own.
  const job = await prepareJob(flags, context, { installables: () => [] });
  const session = await beginJobUpload(job, context, true);
  saveUploadState(job.settings.reportDir, session.state);
  const confFiles = session.nixEnv.NIX_USER_CONF_FILES ?? job.childEnv.NIX_USER_CONF_FILES;
  const vars: Record<string, string> = {};
  if (confFiles !== undefined && confFiles !== context.env.NIX_USER_CONF_FILES) vars.NIX_USER_CONF_FILES = confFiles;
  writeEnvFile(job.settings.reportDir, vars);
  context.log.info(`set up: your script's nix commands now ${job.substituter ? "pull from the cache" : "build without the cache"}${session.state.mode === "daemon" ? " and upload each build as it finishes" : ""} (through ${ENV_FILE})`);
  return 0;
}
