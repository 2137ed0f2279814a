import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.ts";
import { resolveSettings, type RawSettings } from "../../src/settings.ts";
import { MANIFEST } from "../../src/manifest.ts";

const resolve = (flags: RawSettings, env: NodeJS.ProcessEnv = {}) =>
  resolveSettings(flags, { NIKS3_SERVER_URL: "https://niks3.example.com", ...env }, { projectDir: "/p", required: ["serverUrl"] });

describe("settings", () => {
  it("defaults come from component.yml and the project dir", () => {
    const settings = resolve({});
    expect(settings).toMatchObject({
      serverUrl: "https://niks3.example.com",
      installables: [".#default"],
      push: "auto",
      pin: "auto",
      niks3Version: MANIFEST.niks3.version,
      downloadUrl: MANIFEST.niks3.download_url,
      cacheDir: "/p/.niks3-gitlab/cache",
      strict: false,
      pushTimeoutSeconds: 1800,
    });
  });

  it("flags win over variables; variables over defaults", () => {
    const settings = resolve({ push: "never" }, { NIKS3_PUSH: "always", NIKS3_PIN: "never", NIKS3_INSTALLABLES: " .#a  .#b " });
    expect(settings.push).toBe("never");
    expect(settings.pin).toBe("never");
    expect(settings.installables).toEqual([".#a", ".#b"]);
  });

  it("an input left empty in the template means its default", () => {
    expect(resolve({}, { NIKS3_PUSH: "", NIKS3_VERSION: "" }).push).toBe("auto");
  });

  it("takes the token only from NIKS3_TOKEN and normalises values", () => {
    const settings = resolve({}, { NIKS3_TOKEN: " abc.def.ghi \n", NIKS3_VERSION: "v1.8.0", NIKS3_SERVER_URL: "https://n.example/prefix/" });
    expect(settings.token).toBe("abc.def.ghi");
    expect(settings.niks3Version).toBe("1.8.0");
    expect(settings.serverUrl).toBe("https://n.example/prefix");
    expect(resolve({ pushTimeout: "90s" }).pushTimeoutSeconds).toBe(90);
    expect(resolve({ pushTimeout: "2h" }).pushTimeoutSeconds).toBe(7200);
  });

  const bad: { name: string; flags?: RawSettings; env?: NodeJS.ProcessEnv; input: string }[] = [
    { name: "server_url that is not a URL", flags: { serverUrl: "niks3.example.com" }, input: "server_url" },
    { name: "server_url with another scheme", env: { NIKS3_SERVER_URL: "ftp://x" }, input: "server_url" },
    { name: "missing server_url", env: { NIKS3_SERVER_URL: "" }, input: "server_url" },
    { name: "push=maybe", env: { NIKS3_PUSH: "maybe" }, input: "push" },
    { name: "push=TRUE", flags: { push: "TRUE" }, input: "push" },
    { name: "empty installables", env: { NIKS3_INSTALLABLES: "  " }, input: "installables" },
    { name: "installable that is a flag", env: { NIKS3_INSTALLABLES: ".#a --impure" }, input: "installables" },
    { name: "pin with a slash", env: { NIKS3_PIN: "acme/main" }, input: "pin" },
    { name: "pin too long", env: { NIKS3_PIN: "p".repeat(257) }, input: "pin" },
    { name: "niks3_version latest", env: { NIKS3_VERSION: "latest" }, input: "niks3_version" },
    { name: "niks3_version 1.7", env: { NIKS3_VERSION: "1.7" }, input: "niks3_version" },
    { name: "download_url not a URL", env: { NIKS3_DOWNLOAD_URL: "mirror/niks3" }, input: "download_url" },
    { name: "strict=sometimes", env: { NIKS3_STRICT: "sometimes" }, input: "strict" },
    { name: "push_timeout without a number", env: { NIKS3_PUSH_TIMEOUT: "soon" }, input: "push_timeout" },
    { name: "push_timeout zero", env: { NIKS3_PUSH_TIMEOUT: "0s" }, input: "push_timeout" },
    { name: "push_timeout in days", env: { NIKS3_PUSH_TIMEOUT: "1d" }, input: "push_timeout" },
    { name: "debug=on", env: { NIKS3_DEBUG: "on" }, input: "debug" },
  ];

  it.each(bad)("$name: one line naming $input, exit 2", ({ flags, env, input }) => {
    let error: unknown;
    try {
      resolve(flags ?? {}, env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    const usage = error as UsageError;
    expect(usage.exitCode).toBe(2);
    expect(usage.message).toMatch(new RegExp(`^niks3: (invalid )?${input} \\(NIKS3_`));
    expect(usage.message).not.toContain("\n");
  });
});
