// The annotations report (`artifacts:reports:annotations`, GitLab 16.3+): external links on the
// job's page to the cache, the pins this job set, the narinfo of each installable it pushed, and
// the job itself. Derived from the summary only.

import { wasPushed, type JobSummary } from "./summary.ts";

export const ANNOTATIONS_FILE = "annotations.json";
/** The heading GitLab shows above the links. */
export const ANNOTATIONS_SECTION = "niks3";
/** Enough links to be useful on the job page without burying it. */
const MAX_NARINFO_LINKS = 20;

export interface ExternalLink {
  external_link: { label: string; url: string };
}

const link = (label: string, url: string): ExternalLink => ({ external_link: { label, url } });

/** storePathHash: the 32-character hash that names a store path's narinfo. */
function storePathHash(path: string): string | undefined {
  return /\/([0-9a-df-np-sv-z]{32})-[^/]+$/.exec(path)?.[1];
}

export function buildAnnotations(summary: JobSummary): Record<string, ExternalLink[]> {
  const cache = summary.substituter?.replace(/\/+$/, "");
  const links: ExternalLink[] = [link(cache ? `binary cache ${cache}` : `niks3 server ${summary.server_url}`, cache ?? summary.server_url)];
  if (cache) {
    for (const pin of summary.push.pinned) links.push(link(`pin ${pin}`, `${cache}/pins/${encodeURIComponent(pin)}`));
    const pushed = summary.installables.filter((row) => wasPushed(row, summary)).slice(0, MAX_NARINFO_LINKS);
    for (const row of pushed) {
      const hash = storePathHash(Object.values(row.outputs)[0] ?? "");
      if (hash) links.push(link(`${row.installable} narinfo`, `${cache}/${hash}.narinfo`));
    }
  }
  if (summary.job?.url) links.push(link(`job ${summary.job.name ?? ""}`.trim(), summary.job.url));
  return { [ANNOTATIONS_SECTION]: links };
}

export function renderAnnotations(summary: JobSummary): string {
  return `${JSON.stringify(buildAnnotations(summary), null, 2)}\n`;
}
