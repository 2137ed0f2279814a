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
  debug: {
    input: "debug",
    env: "NIKS3_DEBUG",
    flag: "--debug",
    description: "pass --debug to niks3 (it logs HTTP headers, including the token: never in shared logs)",
    allowed: "true or false",
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;
