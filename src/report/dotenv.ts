// The dotenv report (`artifacts:reports:dotenv`): outputs later jobs receive as variables. GitLab
// reads `KEY=value` lines with keys of [A-Za-z0-9_], no quoting, no multi-line values, no comments,
// a file under 5 KB and at most 20 variables on self-managed instances (fewer on old ones), so the
// writer refuses anything else and the list stays short.

import { ExitCode } from "../errors.ts";
import { wasPushed, type JobSummary } from "./summary.ts";

export const DOTENV_FILE = "niks3.env";
/** Below GitLab's 5 KB limit, with room to spare. */
export const DOTENV_MAX_BYTES = 4096;
const KEY = /^[A-Za-z0-9_]+$/;

/** The variables, in the order they are written; the README documents each. */
export const DOTENV_KEYS = [
  "NIKS3_STATUS",
  "NIKS3_SUBSTITUTER",
  "NIKS3_PUSHED",
  "NIKS3_PUSHED_COUNT",
  "NIKS3_CACHED_COUNT",
  "NIKS3_PINS",
  "NIKS3_OUT_PATHS",
] as const;
export type DotenvKey = (typeof DOTENV_KEYS)[number];

/** Dropped first, in this order, when the file would be too big. */
const DROPPABLE: readonly DotenvKey[] = ["NIKS3_OUT_PATHS", "NIKS3_PINS"];

/** renderDotenv writes `KEY=value` lines; a key GitLab would reject or a line break in a value is a bug, so it throws. */
export function renderDotenv(entries: readonly (readonly [string, string])[]): string {
  return entries
    .map(([key, value]) => {
      if (!KEY.test(key)) throw new Error(`dotenv key ${JSON.stringify(key)} is not [A-Za-z0-9_]+`);
      if (/[\r\n]/.test(value)) throw new Error(`dotenv value of ${key} has a line break`);
      return `${key}=${value}\n`;
    })
    .join("");
}

export function jobStatus(summary: JobSummary): "success" | "build-failed" | "push-failed" {
  if (summary.installables.some((row) => !row.ok)) return "build-failed";
  if (summary.exit_code === ExitCode.ok) return "success";
  return summary.push.attempted && !summary.push.ok ? "push-failed" : "build-failed";
}

export function dotenvValues(summary: JobSummary): Record<DotenvKey, string> {
  const built = summary.installables.filter((row) => row.ok);
  return {
    NIKS3_STATUS: jobStatus(summary),
    NIKS3_SUBSTITUTER: summary.substituter ?? "",
    NIKS3_PUSHED: String(built.length > 0 && built.every((row) => wasPushed(row, summary))),
    NIKS3_PUSHED_COUNT: String(summary.push.uploaded),
    NIKS3_CACHED_COUNT: String(summary.push.cached),
    NIKS3_PINS: summary.push.pinned.join(" "),
    NIKS3_OUT_PATHS: built.flatMap((row) => Object.values(row.outputs)).join(" "),
  };
}

/** dotenvReport renders the file within DOTENV_MAX_BYTES, leaving out the long lists if it must (named in `dropped`). */
export function dotenvReport(summary: JobSummary, maxBytes: number = DOTENV_MAX_BYTES): { text: string; dropped: DotenvKey[] } {
  const values = dotenvValues(summary);
  const dropped: DotenvKey[] = [];
  const render = () => renderDotenv(DOTENV_KEYS.filter((key) => !dropped.includes(key)).map((key) => [key, values[key].replace(/[\r\n]+/g, " ")] as const));
  let text = render();
  for (const key of DROPPABLE) {
    if (Buffer.byteLength(text) <= maxBytes) break;
    dropped.push(key);
    text = render();
  }
  return { text, dropped };
}
