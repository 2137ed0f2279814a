// Typed errors and the exit codes they map to. Expected failures (a build that fails, a push that
// fails) are data in the job's results; these errors are for states the job cannot continue from.
// The one place that turns them into an exit code is main.ts.

export const ExitCode = {
  ok: 0,
  /** The build failed, or the helper could not continue. */
  failure: 1,
  /** A setting was invalid; nothing ran. */
  usage: 2,
  /** The build succeeded but the push did not. The templates list it in `allow_failure: exit_codes`. */
  pushFailed: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Niks3GitlabError is an error whose message is one line meant for the user, without a stack trace. */
export class Niks3GitlabError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.failure) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** UsageError: a bad setting. Exit 2 before anything runs. */
export class UsageError extends Niks3GitlabError {
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

/** InstallError: niks3 could not be installed (download, checksum, archive). Fails closed. */
export class InstallError extends Niks3GitlabError {}
