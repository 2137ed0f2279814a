// Settings: every input the helper takes, as a flag or a NIKS3_* variable (flags win), parsed once
// with zod into one typed object. A bad value is one line naming the input and what is allowed
// (UsageError, exit 2) before anything runs. No other module reads NIKS3_* variables.

import { z } from "zod";
import { UsageError } from "./errors.ts";
import { MANIFEST } from "./manifest.ts";
import { PUSH_MODES, SETTINGS, UPLOAD_MODES, type SettingName } from "./settings-table.ts";

export { PUSH_MODES, SETTINGS, UPLOAD_MODES, type PushMode, type SettingName, type UploadModeSetting } from "./settings-table.ts";

/** PIN_NAME is niks3's rule for pin names (server: `^[a-zA-Z0-9._-]+$`, at most 256 characters). */
export const PIN_NAME = /^[A-Za-z0-9._-]{1,256}$/;

const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "";
    } catch {
      return false;
    }
  })
  .transform((value) => value.replace(/\/+$/, ""));

const durationSeconds = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?(s|m|h)?$/)
  .transform((value) => {
    const amount = Number.parseFloat(value);
    const unit = value.at(-1);
    return amount * (unit === "h" ? 3600 : unit === "m" ? 60 : 1);
  })
  .refine((seconds) => seconds > 0);

const boolish = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0", "yes", "no"]))
  .transform((value) => value === "true" || value === "1" || value === "yes");

/** globList: space-separated glob patterns (warm's include and exclude). */
const globList = z
  .string()
  .transform((value) => value.split(/\s+/).filter(Boolean))
  .refine((list) => list.every((item) => !item.startsWith("-")));

const SCHEMAS = {
  serverUrl: httpUrl,
  installables: z
      .string()
      .transform((value) => value.split(/\s+/).filter(Boolean))
      .refine((list) => list.length > 0)
      .refine((list) => list.every((item) => !item.startsWith("-"))),
  push: z.string().trim().pipe(z.enum(PUSH_MODES)),
  pin: z.string().trim().regex(PIN_NAME),
  niks3Version: z
      .string()
      .trim()
      .transform((value) => value.replace(/^v/, ""))
      .pipe(z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/)),
  downloadUrl: httpUrl,
  cacheDir: z.string().trim().min(1),
  reportDir: z.string().trim().min(1),
  strict: boolish,
  pushTimeout: durationSeconds,
  cacheConfigTimeout: durationSeconds,
  uploadMode: z.string().trim().pipe(z.enum(UPLOAD_MODES)),
  debug: boolish,
  mrNoteTokenVariable: z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  warmFlake: z.string().trim().regex(/^[^\s-][^\s]*$/),
  warmInclude: globList,
  warmExclude: globList,
  warmPrune: boolish,
  warmSystem: z.string().trim().regex(/^[A-Za-z0-9_]+-[A-Za-z0-9_]+$/),
} satisfies Record<SettingName, z.ZodType>;

export interface Settings {
  serverUrl: string;
  installables: string[];
  push: (typeof PUSH_MODES)[number];
  /** "auto", "never", or an explicit pin name. */
  pin: string;
  niks3Version: string;
  downloadUrl: string;
  cacheDir: string;
  reportDir: string;
  strict: boolean;
  pushTimeoutSeconds: number;
  cacheConfigTimeoutSeconds: number;
  /** How built paths reach the cache: auto (pick from the store), daemon (niks3-hook), store-diff. */
  uploadMode: (typeof UPLOAD_MODES)[number];
  debug: boolean;
  /** The token from NIKS3_TOKEN (only ever an environment variable, never a flag). */
  token: string | undefined;
  /** The name of the variable holding the MR note token; "" when no note is wanted. */
  mrNoteTokenVariable: string;
  /** That variable's value (a secret, like `token`). */
  mrNoteToken: string | undefined;
  /** warm: the flake reference, output globs (empty include: all), prune, and system ("" = Nix's own). */
  warmFlake: string;
  warmInclude: string[];
  warmExclude: string[];
  warmPrune: boolean;
  warmSystem: string;
}

/** Raw values as they came, flags already merged over variables by the caller. */
export type RawSettings = Partial<Record<SettingName, string | boolean | undefined>>;

export function defaultSettings(projectDir: string): Record<SettingName, string> {
  return {
    serverUrl: "",
    installables: ".#default",
    push: "auto",
    pin: "auto",
    niks3Version: MANIFEST.niks3.version,
    downloadUrl: MANIFEST.niks3.download_url,
    cacheDir: `${projectDir}/.niks3-gitlab/cache`,
    reportDir: `${projectDir}/.niks3-gitlab`,
    strict: "false",
    pushTimeout: "30m",
    cacheConfigTimeout: "20s",
    uploadMode: "auto",
    debug: "false",
    mrNoteTokenVariable: "",
    warmFlake: ".",
    warmInclude: "",
    warmExclude: "",
    warmPrune: "false",
    warmSystem: "",
  };
}

/**
 * resolveSettings merges flags over NIKS3_* variables over defaults and validates each value.
 * `required` lists settings that must be non-empty for the command at hand.
 */
export function resolveSettings(
  flags: RawSettings,
  env: NodeJS.ProcessEnv,
  options: { projectDir: string; required?: readonly SettingName[] },
): Settings {
  const defaults = defaultSettings(options.projectDir);
  const value = (name: SettingName): { raw: string; source: string } => {
    const spec = SETTINGS[name];
    const flag = flags[name];
    if (flag !== undefined) return { raw: flag === true ? "true" : String(flag), source: spec.flag };
    const fromEnv = env[spec.env];
    // GitLab passes an input left empty as an empty variable: that means "the default", except for
    // installables, where an empty list is a mistake worth reporting.
    if (fromEnv !== undefined && (fromEnv.trim() !== "" || name === "installables")) {
      return { raw: fromEnv, source: spec.env };
    }
    return { raw: defaults[name], source: "default" };
  };

  const parse = <N extends SettingName>(name: N): z.output<(typeof SCHEMAS)[N]> => {
    const spec = SETTINGS[name];
    const { raw, source } = value(name);
    if (raw.trim() === "" && options.required?.includes(name)) {
      throw new UsageError(`niks3: ${spec.input} (${spec.env} / ${spec.flag}) is required: ${spec.allowed}`);
    }
    if (raw === "" && defaults[name] === "") return "" as z.output<(typeof SCHEMAS)[N]>;
    const result = SCHEMAS[name].safeParse(raw);
    if (!result.success) {
      const shown = source === "default" ? "" : ` from ${source}`;
      throw new UsageError(
        `niks3: invalid ${spec.input} (${spec.env} / ${spec.flag})${shown}: expected ${spec.allowed}, got ${JSON.stringify(raw)}`,
      );
    }
    return result.data as z.output<(typeof SCHEMAS)[N]>;
  };

  const token = env.NIKS3_TOKEN?.trim();
  const mrNoteTokenVariable = parse("mrNoteTokenVariable");
  const mrNoteToken = mrNoteTokenVariable ? env[mrNoteTokenVariable]?.trim() : undefined;
  return {
    serverUrl: parse("serverUrl"),
    installables: parse("installables"),
    push: parse("push"),
    pin: parse("pin"),
    niks3Version: parse("niks3Version"),
    downloadUrl: parse("downloadUrl"),
    cacheDir: parse("cacheDir"),
    reportDir: parse("reportDir"),
    strict: parse("strict"),
    pushTimeoutSeconds: parse("pushTimeout"),
    cacheConfigTimeoutSeconds: parse("cacheConfigTimeout"),
    uploadMode: parse("uploadMode"),
    debug: parse("debug"),
    token: token ? token : undefined,
    mrNoteTokenVariable,
    mrNoteToken: mrNoteToken ? mrNoteToken : undefined,
    warmFlake: parse("warmFlake"),
    // An empty default comes back as "" (see parse): no patterns.
    warmInclude: parse("warmInclude") || [],
    warmExclude: parse("warmExclude") || [],
    warmPrune: parse("warmPrune"),
    warmSystem: parse("warmSystem"),
  };
}
