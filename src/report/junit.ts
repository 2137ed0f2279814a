// The JUnit report (`artifacts:reports:junit`), which feeds GitLab's merge request test widget and
// the pipeline's Tests tab: one testcase per installable, failures first; a failure carries the tail
// of the Nix log. Derived from the summary only.

import { XMLBuilder } from "fast-xml-parser";
import { formatBytes } from "../nix/closure-size.ts";
import { failuresFirst, wasPushed, type InstallableSummary, type JobSummary } from "./summary.ts";

export const JUNIT_FILE = "junit.xml";
const CLASSNAME = "nix build";
const MAX_TEXT = 64 * 1024;

/**
 * xmlSafe strips what XML 1.0 cannot carry (terminal colour codes, other control characters) from
 * Nix output, and bounds its length.
 */
export function xmlSafe(text: string): string {
  const cleaned = text
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "")
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "");
  return cleaned.length > MAX_TEXT ? `…${cleaned.slice(-MAX_TEXT)}` : cleaned;
}

/**
 * failureMessage: the line of the log that says what went wrong, for the widget's one-line view:
 * Nix's first `error:` line, else the first other line naming an error. Warnings are passed over,
 * even those that quote an error ("warning: error: SQLite database … is busy", when Nix waits for a
 * lock).
 */
export function failureMessage(error: string | undefined): string {
  const lines = xmlSafe(error ?? "").split("\n").map((line) => line.trim()).filter(Boolean);
  const errorLine =
    lines.find((line) => line.startsWith("error:")) ??
    lines.find((line) => !line.startsWith("warning:") && /\berror\b/i.test(line)) ??
    lines.at(-1);
  return errorLine ? errorLine.slice(0, 300) : "the build failed";
}

function testcase(row: InstallableSummary, pushed: boolean): Record<string, unknown> {
  const base = { "@_classname": CLASSNAME, "@_name": row.installable };
  if (!row.ok) {
    return {
      ...base,
      failure: { "@_message": failureMessage(row.error), "@_type": "nix build", "#text": xmlSafe(row.error ?? "the build failed") },
    };
  }
  const out = [
    ...Object.entries(row.outputs).map(([name, path]) => `${name}: ${path}`),
    ...(row.closure_size === undefined ? [] : [`closure size: ${formatBytes(row.closure_size)}`]),
    ...(row.pin ? [`pin: ${row.pin}`] : []),
    `pushed: ${pushed ? "yes" : "no"}`,
  ];
  return { ...base, "system-out": out.join("\n") };
}

/** renderJunit renders the report; the suite is named after the job when GitLab named it. */
export function renderJunit(summary: JobSummary): string {
  const rows = failuresFirst(summary.installables);
  const failures = rows.filter((row) => !row.ok).length;
  const seconds = ((summary.durations_ms?.build ?? 0) / 1000).toFixed(3);
  const suite = {
    "@_name": summary.job?.name ?? "niks3-gitlab",
    "@_tests": rows.length,
    "@_failures": failures,
    "@_errors": 0,
    "@_skipped": 0,
    "@_time": seconds,
    testcase: rows.map((row) => testcase(row, wasPushed(row, summary))),
  };
  const document = {
    "?xml": { "@_version": "1.0", "@_encoding": "UTF-8" },
    testsuites: { "@_name": "niks3-gitlab", "@_tests": rows.length, "@_failures": failures, "@_time": seconds, testsuite: [suite] },
  };
  const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", format: true, suppressEmptyNode: true });
  return builder.build(document) as string;
}
