// The OIDC token: read its claims (never print the token), and hand it to niks3 through a 0600 file
// in a private directory that is removed when the helper exits, however it exits.

import { jwtDecode } from "jwt-decode";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TokenClaims {
  aud: string[];
  iss: string | undefined;
  exp: number | undefined;
  /** Non-secret claims worth showing when a push is refused. */
  projectPath: string | undefined;
  ref: string | undefined;
  refProtected: string | undefined;
}

/** decodeTokenClaims returns the claims of a JWT, or undefined when the token is not a JWT (a static token). */
export function decodeTokenClaims(token: string): TokenClaims | undefined {
  try {
    const payload = jwtDecode<Record<string, unknown>>(token);
    const aud = payload.aud;
    const str = (value: unknown) => (typeof value === "string" ? value : undefined);
    return {
      aud: typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === "string") : [],
      iss: str(payload.iss),
      exp: typeof payload.exp === "number" ? payload.exp : undefined,
      projectPath: str(payload.project_path),
      ref: str(payload.ref),
      refProtected: str(payload.ref_protected),
    };
  } catch {
    return undefined;
  }
}

export interface AudienceCheck {
  ok: boolean;
  /** Why a push would be refused, naming both audiences and the input to change. */
  problem?: string;
}

/** checkAudience compares the token's aud with the audience the server expects for this issuer. */
export function checkAudience(claims: TokenClaims | undefined, serverAudience: string | undefined): AudienceCheck {
  if (!claims || serverAudience === undefined) return { ok: true };
  if (claims.aud.includes(serverAudience)) return { ok: true };
  const got = claims.aud.length ? claims.aud.join(", ") : "(none)";
  return {
    ok: false,
    problem:
      `the token's aud is ${got} but the server expects ${serverAudience} for this issuer: ` +
      `set the component input audience to ${serverAudience} (or id_tokens: NIKS3_TOKEN: aud) so niks3 accepts the token`,
  };
}

export interface TokenFile {
  path: string;
  remove(): void;
}

const liveTokenDirs = new Set<string>();

/**
 * writeTokenFile writes the token to a 0600 file inside a fresh 0700 directory. It is removed when
 * the helper exits unless `keepAfterExit` (the setup component's daemon needs it until after_script,
 * which removes it).
 */
export function writeTokenFile(token: string, parent: string = tmpdir(), options: { keepAfterExit?: boolean } = {}): TokenFile {
  const dir = mkdtempSync(join(parent, "niks3-token-"));
  if (!options.keepAfterExit) liveTokenDirs.add(dir);
  const path = join(dir, "token");
  writeFileSync(path, token, { mode: 0o600 });
  return {
    path,
    remove() {
      rmSync(dir, { recursive: true, force: true });
      liveTokenDirs.delete(dir);
    },
  };
}

/** removeTokenFiles removes every token file still present (called on exit and on signals). */
export function removeTokenFiles(): void {
  for (const dir of liveTokenDirs) rmSync(dir, { recursive: true, force: true });
  liveTokenDirs.clear();
}
