// The entry point: run the command table and map errors to exit codes in this one place. Expected
// problems (Niks3GitlabError) print one line; anything else is a bug and says where to report it.

import { Niks3GitlabError, ExitCode } from "./errors.ts";
import { createLogger } from "./log.ts";
import { buildProgram } from "./cli.ts";
import { terminateChildren } from "./edges/children.ts";
import { removeTokenFiles } from "./token.ts";

const secrets = (): string[] => (process.env.NIKS3_TOKEN ? [process.env.NIKS3_TOKEN] : []);
const log = createLogger((text) => process.stderr.write(text), secrets);

function onCancel(signal: NodeJS.Signals): void {
  log.warn(`received ${signal}: stopping Nix and niks3 and removing the token file`);
  terminateChildren();
  removeTokenFiles();
  process.exit(signal === "SIGINT" ? 130 : 143);
}
process.once("SIGTERM", onCancel);
process.once("SIGINT", onCancel);
process.on("exit", removeTokenFiles);

async function main(): Promise<void> {
  const program = buildProgram(
    { env: process.env, cwd: process.cwd(), log, platform: process.platform, arch: process.arch },
    (code) => {
      process.exitCode = code;
    },
  );
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    process.exitCode = exitCodeFor(error);
  }
}

function exitCodeFor(error: unknown): number {
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
