// What `niks3-gitlab doctor` looks at, gathered as facts for src/doctor/checks.ts: Nix's version
// (through the process edge), the server's /health (through the HTTP edge), and the token's claims
// (decoded, never printed whole). Who we are and what Nix trusts is probed as the jobs probe it
// (src/upload/probe.ts).

import { jwtDecode } from "jwt-decode";
import { runProcess } from "../edges/proc.ts";
import { findOnPath } from "../install/tool-cache.ts";
import { describeError, getText, type HttpOptions } from "../edges/http.ts";
import type { HealthFacts, NixFacts, TokenFacts } from "./checks.ts";

export async function probeNix(env: NodeJS.ProcessEnv): Promise<NixFacts> {
  const result = await runProcess("nix", ["--version"], { env });
  if (result.exitCode !== 0) {
    const reason = result.exitCode === 127 ? "command not found" : `nix --version exited with ${result.exitCode}`;
    return { found: false, reason };
  }
  const path = await findOnPath(env.PATH ?? "", "nix");
  return { found: true, version: result.stdout.trim().split("\n")[0] ?? "nix", path };
}

export async function probeHealth(serverUrl: string, http: HttpOptions): Promise<HealthFacts> {
  try {
    await getText(`${serverUrl.replace(/\/+$/, "")}/health`, http);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: healthFailure(describeError(error)) };
  }
}

/** healthFailure turns "niks3: GET <url> failed after 2 attempts: x: x" into "failed after 2 attempts: x". */
export function healthFailure(described: string): string {
  const text = described.replace(/^niks3: GET \S+ /, "");
  const parts = text.split(": ").filter((part, index, all) => part !== all[index - 1]);
  const reason = parts.join(": ");
  return /^HTTP \d+$/.test(reason) ? `answered ${reason}` : reason;
}

/** tokenFacts decodes the token's payload; the token itself goes no further than this function. */
export function tokenFacts(token: string | undefined): TokenFacts {
  if (!token) return { present: false, claims: undefined };
  try {
    return { present: true, claims: jwtDecode<Record<string, unknown>>(token) };
  } catch {
    return { present: true, claims: undefined };
  }
}
