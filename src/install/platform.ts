// The platform map: which niks3 release asset runs here. Pure data and one lookup; no I/O.
// niks3 ships linux and darwin builds for amd64 and arm64 only (design/niks3-facts.md §2).

import { InstallError } from "../errors.ts";

// Keys are Node's os.platform() values; goreleaser titles the OS name.
const OS_NAMES: Readonly<Record<string, string>> = {
  linux: "Linux",
  darwin: "Darwin",
};

// Keys are Node's os.arch() values plus `uname -m` spellings; goreleaser names amd64 x86_64.
// Linux `uname -m` says aarch64 where the asset says arm64 (the wiki snippet's bug).
const ARCH_NAMES: Readonly<Record<string, string>> = {
  x64: "x86_64",
  x86_64: "x86_64",
  amd64: "x86_64",
  arm64: "arm64",
  aarch64: "arm64",
};

/** assetStem names the asset without its extension (`niks3_Linux_x86_64`); it is also the cache folder name. */
export function assetStem(platform: string, arch: string): string {
  const os = Object.hasOwn(OS_NAMES, platform) ? OS_NAMES[platform] : undefined;
  const cpu = Object.hasOwn(ARCH_NAMES, arch) ? ARCH_NAMES[arch] : undefined;
  if (os === undefined || cpu === undefined) {
    throw new InstallError(
      `niks3: unsupported platform: ${platform}/${arch} (niks3 ships linux and darwin, x86_64 and arm64)`,
    );
  }
  return `niks3_${os}_${cpu}`;
}

/** assetName names the release archive for a platform, e.g. `niks3_Linux_arm64.tar.gz` for linux/aarch64. */
export function assetName(platform: string, arch: string): string {
  return `${assetStem(platform, arch)}.tar.gz`;
}
