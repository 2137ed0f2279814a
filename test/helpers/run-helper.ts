// Runs the bundled CLI (dist/, as users get it) as a child process and collects what a user sees.
import { execa } from "execa";
import { BUNDLE } from "./repo.ts";

export interface HelperRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved, as in a job log. */
  all: string;
}

export async function runHelper(args: readonly string[], options: { env: NodeJS.ProcessEnv; cwd: string; bundle?: string }): Promise<HelperRun> {
  const result = await execa(process.execPath, [options.bundle ?? BUNDLE, ...args], {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    reject: false,
    all: true,
    stdin: "ignore",
  });
  return { exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr, all: result.all ?? "" };
}

/** lines: the lines of a log, without GitLab section markers or colour codes. */
export function lines(text: string): string[] {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "").split("\n");
}
