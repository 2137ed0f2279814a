import { describe, expect, it } from "vitest";
import { InstallError } from "../../src/errors.ts";
import { assetName, assetStem } from "../../src/install/platform.ts";

describe("assetName", () => {
  const cases = [
    { name: "linux x64", platform: "linux", arch: "x64", asset: "niks3_Linux_x86_64.tar.gz" },
    { name: "linux arm64", platform: "linux", arch: "arm64", asset: "niks3_Linux_arm64.tar.gz" },
    { name: "linux aarch64 (uname -m) maps to arm64", platform: "linux", arch: "aarch64", asset: "niks3_Linux_arm64.tar.gz" },
    { name: "linux x86_64 (uname -m)", platform: "linux", arch: "x86_64", asset: "niks3_Linux_x86_64.tar.gz" },
    { name: "darwin x64", platform: "darwin", arch: "x64", asset: "niks3_Darwin_x86_64.tar.gz" },
    { name: "darwin arm64", platform: "darwin", arch: "arm64", asset: "niks3_Darwin_arm64.tar.gz" },
    { name: "darwin aarch64", platform: "darwin", arch: "aarch64", asset: "niks3_Darwin_arm64.tar.gz" },
  ];
  it.each(cases)("$name", ({ platform, arch, asset }) => {
    expect(assetName(platform, arch)).toBe(asset);
    expect(`${assetStem(platform, arch)}.tar.gz`).toBe(asset);
  });

  const unsupported = [
    { name: "windows", platform: "win32", arch: "x64" },
    { name: "freebsd", platform: "freebsd", arch: "x64" },
    { name: "linux 32-bit x86", platform: "linux", arch: "ia32" },
    { name: "linux riscv64", platform: "linux", arch: "riscv64" },
    { name: "linux s390x", platform: "linux", arch: "s390x" },
    { name: "prototype key is not a platform", platform: "constructor", arch: "x64" },
  ];
  it.each(unsupported)("unsupported: $name", ({ platform, arch }) => {
    let thrown: unknown;
    try {
      assetName(platform, arch);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InstallError);
    const message = (thrown as Error).message;
    expect(message).toBe(
      `niks3: unsupported platform: ${platform}/${arch} (niks3 ships linux and darwin, x86_64 and arm64)`,
    );
    expect(message).not.toContain("\n");
  });
});
