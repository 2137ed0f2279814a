// `niks3-gitlab token-script --file F`: what niks3-hook runs as its --auth-token-script. Prints
// {"token","expires_at"} read from a 0600 token file; the token is never in argv or in a generated
// program.

import { Niks3GitlabError } from "../errors.ts";
import { readTokenFile, tokenScriptOutput } from "../upload/token-script.ts";

export function runTokenScript(file: string | undefined): number {
  if (!file) throw new Niks3GitlabError("token-script needs --file <path of the token file>");
  let token: string;
  try {
    token = readTokenFile(file);
  } catch (error) {
    throw new Niks3GitlabError((error as Error).message);
  }
  process.stdout.write(`${tokenScriptOutput(token)}\n`);
  return 0;
}
