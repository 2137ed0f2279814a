// niks3-token: the double's port of niks3 cmdutil.ResolveTokenSource and client/token.go.
// Precedence: --auth-token-script > --auth-token-path > --auth-token > NIKS3_AUTH_TOKEN_FILE >
// $XDG_CONFIG_HOME/niks3/auth-token (only if it exists) > error. Sources are lazy like the Go
// closures: a file is read, or a script run, only when a server request needs the token.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { goQuote } from "./go-format.ts";

export type TokenSourceKind = "script" | "path" | "flag" | "env-file" | "xdg-file";

export interface TokenSource {
  readonly kind: TokenSourceKind;
  /** token returns the bearer token or throws an Error with niks3's wording. */
  token(): string;
}

export interface TokenFlags {
  readonly authToken: string;
  readonly authTokenPath: string;
  readonly authTokenScript: string;
}

const AUTH_REQUIRED =
  "auth token is required (use --auth-token-path, --auth-token-script, NIKS3_AUTH_TOKEN_FILE, or $XDG_CONFIG_HOME/niks3/auth-token)";

/** resolveTokenSource mirrors cmdutil.ResolveTokenSource (no mTLS in the double). */
export function resolveTokenSource(flags: TokenFlags, env: NodeJS.ProcessEnv): TokenSource {
  if (flags.authTokenScript !== "") return scriptToken(flags.authTokenScript);
  if (flags.authTokenPath !== "") return fileToken(flags.authTokenPath, "path");
  if (flags.authToken !== "") {
    const tok = flags.authToken;
    return { kind: "flag", token: () => tok };
  }
  const envFile = env.NIKS3_AUTH_TOKEN_FILE ?? "";
  if (envFile !== "") return fileToken(envFile, "env-file");
  const configDir = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  const xdg = join(configDir, "niks3", "auth-token");
  if (existsSync(xdg)) return fileToken(xdg, "xdg-file");
  throw new Error(AUTH_REQUIRED);
}

/** fileToken mirrors FileToken: trimmed, empty is an error, re-read at most once a minute. */
function fileToken(path: string, kind: TokenSourceKind): TokenSource {
  let cached = "";
  let readAt = 0;
  return {
    kind,
    token() {
      if (cached !== "" && Date.now() - readAt < 60_000) return cached;
      let data: string;
      try {
        data = readFileSync(path, "utf8");
      } catch (err) {
        throw new Error(`reading auth token file ${goQuote(path)}: ${goFsError("open", path, err)}`);
      }
      const tok = data.trim();
      if (tok === "") throw new Error(`auth token file ${goQuote(path)} is empty`);
      cached = tok;
      readAt = Date.now();
      return tok;
    },
  };
}

/** goFsError renders a Node fs error like Go's *PathError ("open /x: no such file or directory"). */
export function goFsError(op: string, path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const text: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
  };
  return `${op} ${path}: ${(code && text[code]) || String(err)}`;
}

/** shellSplit mirrors client/shellsplit.go: POSIX-like quoting, no expansion of any kind. */
export function shellSplit(s: string): string[] {
  const words: string[] = [];
  let cur = "";
  let started = false;
  let state: "plain" | "single" | "double" = "plain";
  let escaped = false;
  for (const r of s) {
    if (escaped) {
      cur += r;
      started = true;
      escaped = false;
      continue;
    }
    if (state === "plain") {
      if (r === "\\") [escaped, started] = [true, true];
      else if (r === "'") [state, started] = ["single", true];
      else if (r === '"') [state, started] = ["double", true];
      else if (r === " " || r === "\t" || r === "\n") {
        if (started) words.push(cur);
        [cur, started] = ["", false];
      } else [cur, started] = [cur + r, true];
    } else if (state === "single") {
      if (r === "'") state = "plain";
      else cur += r;
    } else if (r === "\\") escaped = true;
    else if (r === '"') state = "plain";
    else cur += r;
  }
  if (escaped) throw new Error(`trailing backslash in ${goQuote(s)}`);
  if (state !== "plain") throw new Error(`unterminated quote in ${goQuote(s)}`);
  if (started) words.push(cur);
  return words;
}

/** scriptToken mirrors ScriptToken: cached until 75% of the lifetime when expires_at is given. */
function scriptToken(script: string): TokenSource {
  let cached = "";
  let refreshAt = 0;
  return {
    kind: "script",
    token() {
      if (cached !== "" && refreshAt !== 0 && Date.now() < refreshAt) return cached;
      const { token, expiresAt } = runTokenScript(script);
      if (token === "") throw new Error("auth token script returned empty token");
      cached = token;
      refreshAt = 0;
      if (expiresAt !== undefined) {
        const lifetime = expiresAt - Date.now();
        if (lifetime > 0) refreshAt = Date.now() + lifetime * 0.75;
      }
      return cached;
    },
  };
}

function runTokenScript(script: string): { token: string; expiresAt?: number } {
  let argv: string[];
  try {
    argv = shellSplit(script);
  } catch (err) {
    throw new Error(`parsing auth token script: ${(err as Error).message}`);
  }
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new Error("auth token script is empty");
  const res = spawnSync(cmd, rest, { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 });
  if (res.error) {
    const code = (res.error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? `exec: ${goQuote(cmd)}: executable file not found in $PATH` : String(res.error.message);
    throw new Error(`running auth token script: ${why}`);
  }
  if (res.signal) throw new Error(`running auth token script: signal: ${signalText(res.signal)}`);
  if (res.status !== 0) throw new Error(`running auth token script: exit status ${res.status}`);
  const bad = (why: string): never => {
    throw new Error(`parsing auth token script output (expected JSON object on stdout): ${why}`);
  };
  let out: unknown;
  try {
    out = JSON.parse(res.stdout.toString("utf8"));
  } catch (err) {
    return bad((err as Error).message);
  }
  if (out === null) return { token: "" };
  if (typeof out !== "object" || Array.isArray(out)) {
    return bad(`json: cannot unmarshal ${Array.isArray(out) ? "array" : typeof out} into Go value of type client.scriptOutput`);
  }
  const { token, expires_at: exp } = out as { token?: unknown; expires_at?: unknown };
  if (token !== undefined && token !== null && typeof token !== "string") {
    bad(`json: cannot unmarshal ${typeof token} into Go struct field scriptOutput.token of type string`);
  }
  let expiresAt: number | undefined;
  if (exp !== undefined && exp !== null) {
    const ok = typeof exp === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(exp);
    if (!ok) bad(`parsing time ${goQuote(String(exp))} as "2006-01-02T15:04:05Z07:00": cannot parse`);
    expiresAt = Date.parse(exp as string);
  }
  return { token: typeof token === "string" ? token : "", ...(expiresAt !== undefined ? { expiresAt } : {}) };
}

function signalText(sig: NodeJS.Signals): string {
  const names: Partial<Record<NodeJS.Signals, string>> = {
    SIGKILL: "killed",
    SIGTERM: "terminated",
    SIGINT: "interrupt",
    SIGSEGV: "segmentation fault",
    SIGABRT: "aborted",
  };
  return names[sig] ?? sig;
}
