// The token script niks3 runs (--auth-token-script): our own `token-script` command, a fixed program
// that reads the token from a 0600 file and prints `{"token", "expires_at"}`. expires_at comes from
// the JWT's exp (GitLab: the job's timeout), so niks3 caches the token until 75% of its lifetime and
// does not run the script before every request. A token that is not a JWT gets no expires_at.

import { readFileSync } from "node:fs";
import { decodeTokenClaims } from "../token.ts";

/** tokenScriptOutput is the one JSON line niks3 expects on stdout. */
export function tokenScriptOutput(token: string): string {
  const exp = decodeTokenClaims(token)?.exp;
  const expiresAt = exp !== undefined ? new Date(exp * 1000).toISOString().replace(/\.\d+Z$/, "Z") : undefined;
  return JSON.stringify({ token, ...(expiresAt !== undefined ? { expires_at: expiresAt } : {}) });
}

/** readTokenFile reads the token (trimmed); an empty or missing file is an error naming the file. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read the token file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const token = text.trim();
  if (token === "") throw new Error(`the token file ${path} is empty`);
  return token;
}
