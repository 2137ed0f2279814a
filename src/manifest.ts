// The component manifest (component.yml), inlined at build time so the CLI reads no file to start.
// scripts/build.ts and vitest.config.ts define __NIKS3_GITLAB_MANIFEST__ from the same file.

export interface Manifest {
  package: string;
  components: string[];
  default_image: string;
  niks3: {
    version: string;
    download_url: string;
    sha256: Record<string, string>;
  };
  exit_codes: { push_failed: number };
}

declare const __NIKS3_GITLAB_MANIFEST__: Manifest;
declare const __NIKS3_GITLAB_VERSION__: string;

export const MANIFEST: Manifest = __NIKS3_GITLAB_MANIFEST__;
export const HELPER_VERSION: string = __NIKS3_GITLAB_VERSION__;
