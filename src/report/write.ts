// Writing the report files into the report directory (NIKS3_REPORT_DIR), which the templates list
// under `artifacts:reports` and `artifacts:paths`. A report that cannot be written is a warning,
// never a job failure. Nothing here ever sees the token: every file is derived from the summary.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { ANNOTATIONS_FILE, renderAnnotations } from "./annotations.ts";
import { DOTENV_FILE, DOTENV_MAX_BYTES, dotenvReport } from "./dotenv.ts";
import { JUNIT_FILE, renderJunit } from "./junit.ts";
import type { JobSummary } from "./summary.ts";

export const SUMMARY_FILE = "summary.json";

/** REPORT_FILES: every file writeReports writes, by what GitLab does with it. */
export const REPORT_FILES = {
  summary: SUMMARY_FILE,
  junit: JUNIT_FILE,
  annotations: ANNOTATIONS_FILE,
  dotenv: DOTENV_FILE,
} as const;

/** writeReports writes every report it can and returns the paths written. */
export function writeReports(dir: string, summary: JobSummary, log: Logger): string[] {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    log.warn(`could not create the report directory ${dir}: ${(error as Error).message}; no reports written`);
    return [];
  }
  const written: string[] = [];
  const write = (file: string, what: string, render: () => string) => {
    try {
      const path = join(dir, file);
      writeFileSync(path, render());
      written.push(path);
    } catch (error) {
      log.warn(`could not write the ${what} (${file}): ${(error as Error).message}`);
    }
  };
  write(SUMMARY_FILE, "summary", () => `${JSON.stringify(summary, null, 2)}\n`);
  write(JUNIT_FILE, "JUnit report", () => renderJunit(summary));
  write(ANNOTATIONS_FILE, "annotations report", () => renderAnnotations(summary));
  write(DOTENV_FILE, "dotenv report", () => {
    const { text, dropped } = dotenvReport(summary);
    if (dropped.length > 0) {
      log.warn(
        `${dropped.join(" and ")} left out of ${DOTENV_FILE}: GitLab limits dotenv reports to 5 KB (kept under ${DOTENV_MAX_BYTES} bytes); read them from ${SUMMARY_FILE}`,
      );
    }
    return text;
  });
  return written;
}
