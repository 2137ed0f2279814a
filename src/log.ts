// The job log. Every line the helper prints goes through a Logger so tests can capture it and so
// nothing reaches the log without passing redaction.

export interface Logger {
  /** info: a plain progress line. */
  info(message: string): void;
  /** warn: something went wrong that the job works around. */
  warn(message: string): void;
  /** raw: text passed through as is (a child's stderr, a section marker). */
  raw(text: string): void;
}

const YELLOW = "\u001b[33m";
const RESET = "\u001b[0m";

/** redact replaces every occurrence of each secret with [MASKED], as GitLab masks variables. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 8) out = out.split(secret).join("[MASKED]");
  }
  return out;
}

/** createLogger writes to a stream (stderr by default, so stdout stays free for machine output). */
export function createLogger(
  write: (text: string) => void = (text) => process.stderr.write(text),
  secrets: () => readonly string[] = () => [],
): Logger {
  const emit = (text: string) => write(redact(text, secrets()));
  return {
    info: (message) => emit(`niks3: ${message}\n`),
    warn: (message) => emit(`${YELLOW}niks3: warning: ${message}${RESET}\n`),
    raw: (text) => emit(text),
  };
}

/** memoryLogger collects lines for tests. */
export function memoryLogger(): Logger & { lines: string[]; text(): string } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    raw: (t) => lines.push(t),
    text: () => lines.join("\n"),
  };
}

/** plural: "1 path", "2 paths". */
export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
