// What every command that runs in a job shares: where it runs and how it reports.

import type { Logger } from "../log.ts";

export interface CommandContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: Logger;
  platform: string;
  arch: string;
}
