// The settings table: each setting's component input, variable, flag, description and what is
// allowed, declared once. The CLI's --help, the error messages and the README drift test read it.
// Kept free of zod so that building the command table costs nothing at start-up.

export interface SettingSpec {
  input: string;
  env: string;
  flag: string;
  description: string;
  allowed: string;
}

export const PUSH_MODES = ["auto", "always", "never"] as const;
export type PushMode = (typeof PUSH_MODES)[number];

export const UPLOAD_MODES = ["auto", "daemon", "store-diff"] as const;
export type UploadModeSetting = (typeof UPLOAD_MODES)[number];

export const SETTINGS = {
  serverUrl: {
    input: "server_url",
    env: "NIKS3_SERVER_URL",
    flag: "--server-url",
    description: "URL of the niks3 server (the one `niks3 push --server-url` takes)",
    allowed: "an http(s) URL such as https://niks3.example.com",
  },
  installables: {
    input: "installables",
    env: "NIKS3_INSTALLABLES",
    flag: "--installables",
    description: "space-separated flake installables to build and push",
    allowed: "one or more installables separated by spaces, such as .#default .#checks.x86_64-linux.test",
  },
  push: {
    input: "push",
    env: "NIKS3_PUSH",
    flag: "--push",
    description: "when to push: auto (from the pipeline, see the policy table), always, never",
    allowed: `one of ${PUSH_MODES.join(", ")}`,
  },
  pin: {
    input: "pin",
    env: "NIKS3_PIN",
    flag: "--pin",
    description: "pin the pushed closures: auto (default branch and tags), never, or a pin name",
    allowed: "auto, never, or a pin name of letters, digits, '.', '_' and '-' (at most 256)",
  },
  niks3Version: {
    input: "niks3_version",
    env: "NIKS3_VERSION",
    flag: "--niks3-version",
    description: "niks3 release to install when niks3 is not on PATH",
    allowed: "a release version such as 1.7.0",
  },
  downloadUrl: {
    input: "download_url",
    env: "NIKS3_DOWNLOAD_URL",
    flag: "--download-url",
    description: "base URL of niks3 release archives (mirror it for GitLab without internet)",
    allowed: "an http(s) URL; archives are fetched from <url>/v<version>/niks3_<OS>_<arch>.tar.gz",
  },
  cacheDir: {
    input: "cache_dir",
    env: "NIKS3_CACHE_DIR",
    flag: "--cache-dir",
    description: "where the niks3 binary is cached between jobs (inside the project so `cache:` keeps it)",
    allowed: "a directory path",
  },
  reportDir: {
    input: "report_dir",
    env: "NIKS3_REPORT_DIR",
    flag: "--report-dir",
    description: "where the summary and report files are written",
    allowed: "a directory path",
  },
  strict: {
    input: "strict",
    env: "NIKS3_STRICT",
    flag: "--strict",
    description: "fail the job (exit 1) when the push fails, instead of the push-failed warning code",
    allowed: "true or false",
  },
  pushTimeout: {
    input: "push_timeout",
    env: "NIKS3_PUSH_TIMEOUT",
    flag: "--push-timeout",
    description: "time limit for the upload, after which the push counts as failed",
    allowed: "a duration such as 90s, 20m or 1h",
  },
  cacheConfigTimeout: {
    input: "cache_config_timeout",
    env: "NIKS3_CACHE_CONFIG_TIMEOUT",
    flag: "--cache-config-timeout",
    description: "how long to wait for the server's cache configuration before building without the cache",
    allowed: "a duration such as 5s, 20s or 1m",
  },
  uploadMode: {
    input: "upload_mode",
    env: "NIKS3_UPLOAD_MODE",
    flag: "--upload-mode",
    description:
      "how built paths reach the cache: auto (niks3-hook uploads while building where Nix allows a post-build-hook, else a store diff after the build), daemon, store-diff",
    allowed: `one of ${UPLOAD_MODES.join(", ")}`,
  },
  mrNoteTokenVariable: {
    input: "mr_note_token_variable",
    env: "NIKS3_MR_NOTE_TOKEN_VARIABLE",
    flag: "--mr-note-token-variable",
    description: "name of a CI/CD variable holding a GitLab token that may comment on merge requests; set it to keep one note per merge request with the results",
    allowed: "empty (no note), or a variable name of letters, digits and '_' such as NIKS3_NOTE_TOKEN",
  },
  debug: {
    input: "debug",
    env: "NIKS3_DEBUG",
    flag: "--debug",
    description: "pass --debug to niks3 (it logs HTTP headers, including the token: never in shared logs)",
    allowed: "true or false",
  },
  // warm only: which flake outputs to build, and whether to delete pins of outputs that are gone.
  warmFlake: {
    input: "flake",
    env: "NIKS3_WARM_FLAKE",
    flag: "--flake",
    description: "the flake whose outputs warm builds",
    allowed: "a flake reference such as . or ./nix or github:owner/repo",
  },
  warmInclude: {
    input: "include",
    env: "NIKS3_WARM_INCLUDE",
    flag: "--include",
    description: "globs of the outputs warm builds, matched against names such as packages.hello or packages.x86_64-linux.hello (empty: all)",
    allowed: "space-separated globs where * matches any characters and ? one, such as 'packages.* checks.unit-*'",
  },
  warmExclude: {
    input: "exclude",
    env: "NIKS3_WARM_EXCLUDE",
    flag: "--exclude",
    description: "globs of outputs warm skips, matched like include; exclude wins over include",
    allowed: "space-separated globs where * matches any characters and ? one, such as 'checks.nixos-*'",
  },
  warmPrune: {
    input: "prune",
    env: "NIKS3_WARM_PRUNE",
    flag: "--prune",
    description: "delete this branch's warm pins whose flake output no longer exists, so niks3's GC can collect their closures",
    allowed: "true or false",
  },
  warmSystem: {
    input: "systems",
    env: "NIKS3_WARM_SYSTEM",
    flag: "--system",
    description: "the Nix system whose outputs warm builds (empty: the system Nix runs as)",
    allowed: "empty, or a Nix system such as x86_64-linux or aarch64-darwin",
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;
