// go-flag: a faithful port of the parts of Go's `flag` package (ContinueOnError) that niks3 uses.
// Rules that matter to callers: `-f` and `--f` are the same flag; values come as `--f=v` or `--f v`
// (bool flags only take `--f` or `--f=v`); parsing stops at the first non-flag argument, at a lone
// "-", or after "--"; everything after that is positional, flags included.

import { goQuote } from "./go-format.ts";

export type FlagKind = "string" | "bool" | "int";
export type FlagValue = string | boolean | number;

export interface FlagDef {
  readonly kind: FlagKind;
  readonly def: FlagValue;
}

export interface ParsedFlags {
  /** Current value of every defined flag (defaults included). */
  readonly values: Map<string, FlagValue>;
  /** Flags that were set on the command line (Go's FlagSet.Visit). */
  readonly visited: Set<string>;
  /** Positional arguments left after flag parsing (Go's FlagSet.Args). */
  readonly args: string[];
}

/** FlagError is Go's parse error; `help` marks flag.ErrHelp (-h/-help used but not defined). */
export class FlagError extends Error {
  readonly help: boolean;
  constructor(message: string, help = false) {
    super(message);
    this.help = help;
  }
}

const GO_BOOL: Record<string, boolean> = {
  "1": true, t: true, T: true, TRUE: true, true: true, True: true,
  "0": false, f: false, F: false, FALSE: false, false: false, False: false,
};

/** parseGoInt mirrors strconv.ParseInt(s, 0, 64) closely enough for flag values. */
function parseGoInt(s: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(s);
  if (!m) return undefined;
  const sign = m[1] === "-" ? -1 : 1;
  const body = m[2] ?? "";
  const hasPrefix = /^0[xXbBoO]/.test(body) || (body.length > 1 && body.startsWith("0"));
  if (body.includes("_") && !hasPrefix) return undefined;
  const digits = body.replace(/_/g, "");
  let n: number;
  if (/^0[xX]/.test(digits)) n = parseInt(digits.slice(2), 16);
  else if (/^0[bB]/.test(digits)) n = parseInt(digits.slice(2), 2);
  else if (/^0[oO]/.test(digits)) n = parseInt(digits.slice(2), 8);
  else if (digits.length > 1 && digits.startsWith("0")) n = parseInt(digits.slice(1), 8);
  else n = parseInt(digits, 10);
  return Number.isNaN(n) ? undefined : sign * n;
}

/**
 * parseGoFlags parses argv like FlagSet.Parse with ContinueOnError. On failure Go prints the message
 * to stderr (the FlagSet's Output) before returning the error; `onMessage` receives that message.
 */
export function parseGoFlags(
  defs: Record<string, FlagDef>,
  argv: readonly string[],
  onMessage: (msg: string) => void = (msg) => process.stderr.write(msg + "\n"),
): ParsedFlags {
  const values = new Map<string, FlagValue>(Object.entries(defs).map(([k, d]) => [k, d.def]));
  const visited = new Set<string>();
  const args = [...argv];
  const fail = (msg: string): never => {
    onMessage(msg);
    throw new FlagError(msg);
  };

  while (args.length > 0) {
    const s = args[0] ?? "";
    if (s.length < 2 || s[0] !== "-") break;
    let minuses = 1;
    if (s[1] === "-") {
      minuses = 2;
      if (s.length === 2) {
        args.shift();
        break;
      }
    }
    let name = s.slice(minuses);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") fail(`bad flag syntax: ${s}`);
    args.shift();
    let hasValue = false;
    let value = "";
    const eq = name.indexOf("=", 1);
    if (eq > 0) {
      value = name.slice(eq + 1);
      hasValue = true;
      name = name.slice(0, eq);
    }
    const def = defs[name];
    if (def === undefined) {
      if (name === "help" || name === "h") throw new FlagError("flag: help requested", true);
      fail(`flag provided but not defined: -${name}`);
      break; // unreachable: fail throws
    }
    if (def.kind === "bool") {
      if (hasValue) {
        const b = GO_BOOL[value];
        if (b === undefined) fail(`invalid boolean value ${goQuote(value)} for -${name}: parse error`);
        values.set(name, b ?? false);
      } else {
        values.set(name, true);
      }
    } else {
      if (!hasValue && args.length > 0) {
        hasValue = true;
        value = args.shift() ?? "";
      }
      if (!hasValue) fail(`flag needs an argument: -${name}`);
      if (def.kind === "int") {
        const n = parseGoInt(value);
        if (n === undefined) fail(`invalid value ${goQuote(value)} for flag -${name}: parse error`);
        values.set(name, n ?? 0);
      } else {
        values.set(name, value);
      }
    }
    visited.add(name);
  }
  return { values, visited, args };
}

export function flagString(p: ParsedFlags, name: string): string {
  const v = p.values.get(name);
  return typeof v === "string" ? v : "";
}

export function flagBool(p: ParsedFlags, name: string): boolean {
  return p.values.get(name) === true;
}

export function flagInt(p: ParsedFlags, name: string): number {
  const v = p.values.get(name);
  return typeof v === "number" ? v : 0;
}
