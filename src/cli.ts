// The command table. Each action imports its command module lazily so that `--version` and
// `--help` start as fast as bare node.

import { Command, Option } from "commander";
import { SETTINGS, type SettingName } from "./settings-table.ts";
import type { RawSettings } from "./settings.ts";
import { HELPER_VERSION } from "./manifest.ts";
import type { CommandContext } from "./job/context.ts";

const BOOLEAN_SETTINGS: ReadonlySet<SettingName> = new Set(["strict", "debug"]);

/** settingOptions: one commander option per setting, described from the settings table. */
function settingOptions(names: readonly SettingName[]): Option[] {
  return names.map((name) => {
    const spec = SETTINGS[name];
    const option = BOOLEAN_SETTINGS.has(name)
      ? new Option(spec.flag, `${spec.description} [${spec.env}]`)
      : new Option(`${spec.flag} <value>`, `${spec.description} [${spec.env}]`);
    return option;
  });
}

function rawSettings(options: Record<string, unknown>, names: readonly SettingName[]): RawSettings {
  const raw: RawSettings = {};
  for (const name of names) {
    const value = options[name];
    if (typeof value === "string" || typeof value === "boolean") raw[name] = value;
  }
  return raw;
}

export function buildProgram(context: CommandContext, setExitCode: (code: number) => void): Command {
  const program = new Command("niks3-gitlab")
    .description("Build a Nix flake in GitLab CI, pull from a niks3 cache and push to it with an OIDC id_token")
    .version(HELPER_VERSION, "-V, --version")
    .exitOverride()
    .configureOutput({
      // commander's own errors become our one-line format: "niks3: unknown option '--x' (see --help)".
      writeErr: (text) => context.log.raw(text.trim().replace(/^error: (.*)$/s, "niks3: $1 (see niks3-gitlab --help)") + "\n"),
    });

  const ciSettings: SettingName[] = [
    "serverUrl",
    "installables",
    "push",
    "pin",
    "niks3Version",
    "downloadUrl",
    "cacheDir",
    "reportDir",
    "strict",
    "pushTimeout",
    "debug",
  ];
  const ci = program
    .command("ci")
    .description("build the installables, push their closures and pin them as the pipeline allows (the build component)");
  for (const option of settingOptions(ciSettings)) ci.addOption(option);
  ci.action(async (options: Record<string, unknown>) => {
    const { runCi } = await import("./commands/ci.ts");
    setExitCode(await runCi(rawSettings(options, ciSettings), context));
  });

  return program;
}
