// fake-niks3-signing: the fake server's narinfo signing key. The key pair comes from real
// `nix key generate-secret` / `nix key convert-secret-to-public` (so its format is Nix's own);
// signatures are ed25519 over niks3's fingerprint (server/signing/fingerprint.go), made in node:crypto.

import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface SigningKey {
  readonly name: string;
  /** "name:base64" as Nix prints it, for trusted-public-keys. */
  readonly publicKey: string;
  sign(fingerprint: string): string;
}

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function nixKey(args: string[], input?: string): string {
  return execFileSync("nix", ["--extra-experimental-features", "nix-command", "key", ...args], {
    ...(input !== undefined ? { input } : {}),
    stdio: [input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
  })
    .toString("utf8")
    .trim();
}

/**
 * loadOrCreateSigningKey reuses <dir>/signing-key.sec when present, else generates one with Nix.
 * It checks that node:crypto derives the same public key as `nix key convert-secret-to-public`.
 */
export function loadOrCreateSigningKey(dir: string, keyName: string): SigningKey {
  const secPath = join(dir, "signing-key.sec");
  if (!existsSync(secPath)) {
    writeFileSync(secPath, nixKey(["generate-secret", "--key-name", keyName]) + "\n", { mode: 0o600 });
  }
  const secret = readFileSync(secPath, "utf8").trim();
  const publicKey = nixKey(["convert-secret-to-public"], secret);
  writeFileSync(join(dir, "signing-key.pub"), publicKey + "\n");
  const colon = secret.indexOf(":");
  const name = secret.slice(0, colon);
  const raw = Buffer.from(secret.slice(colon + 1), "base64");
  if (colon <= 0 || (raw.length !== 64 && raw.length !== 32)) throw new Error(`fake niks3: bad signing key in ${secPath}`);
  const key: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw.subarray(0, 32)]), format: "der", type: "pkcs8" });
  const jwk = createPublicKey(key).export({ format: "jwk" });
  const derived = `${name}:${Buffer.from(jwk.x ?? "", "base64url").toString("base64")}`;
  if (derived !== publicKey) throw new Error(`fake niks3: public key mismatch: nix says ${publicKey}, node derives ${derived}`);
  return {
    name,
    publicKey,
    sign: (fingerprint) => `${name}:${sign(null, Buffer.from(fingerprint), key).toString("base64")}`,
  };
}

export interface FingerprintInput {
  readonly storePath: string;
  readonly narHash: string;
  readonly narSize: number;
  readonly references: readonly string[];
}

/** fingerprint mirrors signing.GenerateFingerprint, validation errors included. */
export function fingerprint(info: FingerprintInput): string {
  if (!info.storePath.startsWith("/nix/store")) throw new Error("store path does not start with /nix/store");
  if (!info.narHash.startsWith("sha256:")) throw new Error("NAR hash must start with 'sha256:'");
  if (info.narHash.length !== 59) throw new Error(`NAR hash has invalid length: expected 59, got ${info.narHash.length}`);
  for (const ref of info.references) {
    if (!ref.startsWith("/nix/store")) throw new Error(`reference path does not start with /nix/store: ${ref}`);
  }
  const refs = [...info.references].sort();
  return `1;${info.storePath};${info.narHash};${info.narSize};${refs.join(",")}`;
}
