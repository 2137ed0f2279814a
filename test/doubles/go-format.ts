// go-format: the few Go formatting rules the niks3 CLI double must reproduce byte for byte, so that
// tests of the helper's log parsing see what the real Go binary prints: strconv.Quote, slog's
// TextHandler and default-logger lines, time.Duration.String and niks3's formatBytes.
// Nothing here does I/O except `writeSlog`, which writes one line to stderr synchronously.

export type SlogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";
export type SlogValue = string | number | boolean | GoDuration;

/** GoDuration marks a number of nanoseconds that slog must print with Duration.String. */
export interface GoDuration {
  readonly ns: number;
}

/** goQuote mirrors strconv.Quote: Go escapes, printable Unicode kept as is. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (isGoPrint(ch)) out += ch;
    else if (ch === "\x07") out += "\\a";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\v") out += "\\v";
    else if (cp < 0x20 || cp === 0x7f) out += "\\x" + cp.toString(16).padStart(2, "0");
    else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
    else out += "\\U" + cp.toString(16).padStart(8, "0");
  }
  return out + '"';
}

function isGoPrint(ch: string): boolean {
  return ch === " " || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch);
}

/** slogNeedsQuoting mirrors log/slog's needsQuoting for the text handler. */
function slogNeedsQuoting(s: string): boolean {
  if (s.length === 0) return true;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x80) {
      if (ch === "\\") continue;
      if (ch === " " || ch === "=" || ch === '"' || cp < 0x20 || cp === 0x7f) return true;
      continue;
    }
    if (/^\s$/u.test(ch) || !isGoPrint(ch)) return true;
  }
  return false;
}

function slogText(s: string): string {
  return slogNeedsQuoting(s) ? goQuote(s) : s;
}

function slogValue(v: SlogValue): string {
  if (typeof v === "object") return slogText(goDuration(v.ns));
  if (typeof v === "string") return slogText(v);
  return String(v);
}

function slogAttrs(attrs: Record<string, SlogValue>): string {
  return Object.entries(attrs)
    .map(([k, v]) => ` ${slogText(k)}=${slogValue(v)}`)
    .join("");
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** slogTime is slog's RFC 3339 with exactly three fraction digits, in local time. */
export function slogTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? "Z" : `${off > 0 ? "+" : "-"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${zone}`
  );
}

/** slogTextLine formats one slog.TextHandler line (without the newline). */
export function slogTextLine(level: SlogLevel, msg: string, attrs: Record<string, SlogValue> = {}, now = new Date()): string {
  return `time=${slogTime(now)} level=${level} msg=${slogText(msg)}${slogAttrs(attrs)}`;
}

/** goDefaultLogLine formats a line of slog's default handler (log.LstdFlags prefix), used before SetupLogger. */
export function goDefaultLogLine(level: SlogLevel, msg: string, attrs: Record<string, SlogValue> = {}, now = new Date()): string {
  const d = now;
  const stamp = `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${stamp} ${level} ${msg}${slogAttrs(attrs)}`;
}

function fmtFrac(v: number, prec: number): [string, number] {
  let digits = "";
  let print = false;
  for (let i = 0; i < prec; i++) {
    const digit = v % 10;
    print = print || digit !== 0;
    if (print) digits = String(digit) + digits;
    v = Math.floor(v / 10);
  }
  return [print ? "." + digits : "", v];
}

/** goDuration mirrors time.Duration.String for a non-negative number of nanoseconds. */
export function goDuration(ns: number): string {
  let u = Math.max(0, Math.round(ns));
  if (u === 0) return "0s";
  if (u < 1e9) {
    let unit: string;
    let prec: number;
    if (u < 1e3) [unit, prec] = ["ns", 0];
    else if (u < 1e6) [unit, prec] = ["µs", 3];
    else [unit, prec] = ["ms", 6];
    const [frac, int] = fmtFrac(u, prec);
    return `${int}${frac}${unit}`;
  }
  const [frac, secs] = fmtFrac(u, 9);
  u = secs;
  let out = `${u % 60}${frac}s`;
  u = Math.floor(u / 60);
  if (u > 0) {
    out = `${u % 60}m` + out;
    u = Math.floor(u / 60);
    if (u > 0) out = `${u}h` + out;
  }
  return out;
}

/** roundDuration mirrors Duration.Round(m) for positive durations (half away from zero). */
export function roundDuration(ns: number, m: number): number {
  return Math.floor((ns + m / 2) / m) * m;
}

/** formatBytes mirrors niks3's client/multipart.go formatBytes (1024-based, one decimal). */
export function formatBytes(bytes: number): string {
  const unit = 1024;
  if (bytes < unit) return `${bytes}B`;
  let div = unit;
  let exp = 0;
  for (let n = Math.floor(bytes / unit); n >= unit; n = Math.floor(n / unit)) {
    div *= unit;
    exp++;
  }
  return `${(bytes / div).toFixed(1)}${"KMGTPE"[exp]}B`;
}

/** writeStderrLine writes synchronously so that a process.exit right after loses nothing. */
export function writeStderrLine(line: string): void {
  process.stderr.write(line + "\n");
}
