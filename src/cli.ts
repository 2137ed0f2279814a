// The command table. Each action imports its command module lazily so that `--version` and
// `--help` start as fast as bare node.

import { Command, Option } from "commander";
import { SETTINGS, type SettingName } from "./settings-table.ts";
import type { RawSettings } from "./settings.ts";
import { HELPER_VERSION } from "./manifest.ts";
import type { CommandContext } from "./job/context.ts";

type Runner = (raw: RawSettings, context: CommandContext) => Promise<number>;

const BOOLEAN_SETTINGS: ReadonlySet<SettingName> = new Set(["strict", "debug", "warmPrune"]);

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
    // commander names an option after its flag (`--flake` → flake), not after the setting (warmFlake).
    const value = options[new Option(SETTINGS[name].flag).attributeName()];
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
    "cacheConfigTimeout",
    "uploadMode",
    "debug",
    "mrNoteTokenVariable",
  ];
  const settingsCommand = (name: string, description: string, names: readonly SettingName[], load: () => Promise<Runner>) => {
    const command = program.command(name).description(description);
    for (const option of settingOptions(names)) command.addOption(option);
    command.action(async (options: Record<string, unknown>) => {
      const run = await load();
      setExitCode(await run(rawSettings(options, names), context));
    });
  };

  settingsCommand(
    "ci",
    "build the installables, push their closures and pin them as the pipeline allows (the build component)",
    ciSettings,
    async () => (await import("./commands/ci.ts")).runCi,
  );

  const warmSettings: SettingName[] = [
    ...ciSettings.filter((name) => name !== "installables"),
    "warmFlake",
    "warmInclude",
    "warmExclude",
    "warmPrune",
    "warmSystem",
  ];
  settingsCommand(
    "warm",
    "build every package, check, devShell and formatter of the flake for this system, push them and pin each one (the warm component)",
    warmSettings,
    async () => (await import("./commands/warm.ts")).runWarm,
  );

  settingsCommand(
    "doctor",
    "check Nix, the niks3 server and the job's id_token against each other; print a fix for each problem (exit 1 if any)",
    ["serverUrl"],
    async () => (await import("./commands/doctor.ts")).runDoctor,
  );

  // The setup component: before_script runs `setup`, after_script runs `upload`.
  settingsCommand(
    "setup",
    "configure Nix to pull from the cache and start uploading what the job's own script builds (setup component, before_script)",
    ["serverUrl", "push", "niks3Version", "downloadUrl", "cacheDir", "reportDir", "uploadMode", "debug"],
    async () => (await import("./commands/setup.ts")).runSetup,
  );
  settingsCommand(
    "upload",
    "finish uploading what the job built since setup, within the after_script's time limit (setup component, after_script)",
    ["serverUrl", "reportDir", "pushTimeout", "debug"],
    async () => (await import("./commands/upload.ts")).runUpload,
  );

  program
    .command("token-script", { hidden: true })
    .description("print the token of a 0600 token file as niks3's --auth-token-script expects it")
    .requiredOption("--file <path>", "the token file")
    .action(async (options: { file?: string }) => {
      const { runTokenScript } = await import("./commands/token-script.ts");
      setExitCode(runTokenScript(options.file));
    });

  return program;
}
