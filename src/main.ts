// The entry point: run the command table and map errors to exit codes in this one place. Expected
// problems (Niks3GitlabError) print one line; anything else is a bug and says where to report it.

import * as nodeModule from "node:module";
import { join } from "node:path";
import { readCiContext } from "./ci-context.ts";
import { Niks3GitlabError, ExitCode } from "./errors.ts";
import { createLogger } from "./log.ts";
import { buildProgram } from "./cli.ts";
import { isCancelled, terminateChildren } from "./edges/children.ts";
import { removeTokenFiles } from "./token.ts";
import { unsupportedNode } from "./node-version.ts";

// Masked in everything printed: the id_token, and the token in the variable the MR note names.
const secrets = (): string[] => {
  const noteVariable = process.env.NIKS3_MR_NOTE_TOKEN_VARIABLE?.trim();
  const values = [process.env.NIKS3_TOKEN, noteVariable ? process.env[noteVariable] : undefined];
  return values.filter((value): value is string => value !== undefined && value.trim() !== "").map((value) => value.trim());
};
const log = createLogger((text) => process.stderr.write(text), secrets);

/**
 * onCancel: GitLab cancels a job with SIGTERM. Remove the token at once, stop the children, then
 * exit. Later signals are ignored: Nix, when interrupted, signals its whole process group, which
 * includes us (seen with Nix 2.8), and GitLab follows up with SIGKILL anyway.
 */
let cancelling = false;
async function onCancel(signal: NodeJS.Signals): Promise<void> {
  if (cancelling) return;
  cancelling = true;
  log.warn(`received ${signal}: stopping Nix and niks3 and removing the token file`);
  removeTokenFiles();
  process.exitCode = signal === "SIGINT" ? 130 : 143;
  await terminateChildren(3_000);
  process.exit(signal === "SIGINT" ? 130 : 143);
}
process.on("SIGTERM", (signal) => void onCancel(signal));
process.on("SIGINT", (signal) => void onCancel(signal));
process.on("exit", removeTokenFiles);

// In a job, V8 keeps the compiled helper next to the cached niks3 binary (the templates' `cache:`),
// so later jobs skip most of the parse and compile of the bundle.
const ci = readCiContext(process.env, process.cwd());
if (ci.inCi) {
  // enableCompileCache arrived in Node 22.1.
  nodeModule.enableCompileCache?.(join(ci.projectDir, ".niks3-gitlab", "cache", "node-compile-cache"));
}

async function main(): Promise<void> {
  const oldNode = unsupportedNode(process.version);
  if (oldNode) {
    log.raw(`niks3: ${oldNode}\n`);
    process.exitCode = ExitCode.failure;
    return;
  }
  const program = buildProgram(
    { env: process.env, cwd: process.cwd(), log, platform: process.platform, arch: process.arch },
    (code) => {
      // A cancelled job exits 143 whatever its interrupted steps concluded.
      if (!isCancelled()) process.exitCode = code;
    },
  );
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (!isCancelled()) process.exitCode = exitCodeForError(error);
  }
}

function exitCodeForError(error: unknown): number {
  if (error instanceof Niks3GitlabError) {
    log.raw(`${error.message.startsWith("niks3:") ? error.message : `niks3: ${error.message}`}\n`);
    return error.exitCode;
  }
  const commanderError = error as { code?: string; exitCode?: number };
  if (typeof commanderError.code === "string" && commanderError.code.startsWith("commander.")) {
    // commander already printed its one line (unknown option, missing value, --help, --version).
    return commanderError.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  const message = error instanceof Error ? error.message : String(error);
  log.raw(`niks3: internal error: ${message.split("\n")[0]} (please report it with the job log)\n`);
  if (process.env.NIKS3_DEBUG === "true" && error instanceof Error && error.stack) log.raw(`${error.stack}\n`);
  return ExitCode.failure;
}

await main();
