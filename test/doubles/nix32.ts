// nix32: Nix's base-32 alphabet and the hash conversions niks3 needs (SRI "sha256-<b64>" and the
// structured Nix ≥ 2.33 hash object to "sha256:<nix32>"). Shared by the CLI double and the fake server.

export const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

/** encodeNix32 mirrors niks3 client/nixbase32.go EncodeNixBase32 (and Nix's printHash32). */
export function encodeNix32(input: Uint8Array): string {
  if (input.length === 0) return "";
  const length = Math.floor((input.length * 8 - 1) / 5) + 1;
  let out = "";
  for (let n = length - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    let c = i < input.length ? (input[i] ?? 0) >> j : 0;
    if (i + 1 < input.length) c |= (input[i + 1] ?? 0) << (8 - j);
    out += NIX32_ALPHABET[c & 0x1f];
  }
  return out;
}

/** decodeNix32 is the inverse of encodeNix32; it throws on a character outside the alphabet. */
export function decodeNix32(s: string, byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  for (let n = 0; n < s.length; n++) {
    const ch = s[s.length - n - 1] ?? "";
    const digit = NIX32_ALPHABET.indexOf(ch);
    if (digit < 0) throw new Error(`invalid nix32 character ${JSON.stringify(ch)}`);
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    if (i < byteLength) out[i] = (out[i] ?? 0) | ((digit << j) & 0xff);
    if (i + 1 < byteLength) out[i + 1] = (out[i + 1] ?? 0) | (digit >> (8 - j));
  }
  return out;
}

export function isNix32(s: string, length: number): boolean {
  return s.length === length && [...s].every((c) => NIX32_ALPHABET.includes(c));
}

/**
 * toNix32Hash mirrors ConvertHashToNix32: "sha256:<nix32>" passes through, "sha256-<base64>" is
 * converted, anything else is an error with niks3's wording.
 */
export function toNix32Hash(hash: string): string {
  if (hash.startsWith("sha256:") && !/[-+/=]/.test(hash)) return hash;
  if (!hash.startsWith("sha256-")) {
    throw new Error(`unsupported hash format: ${hash} (expected sha256-... or sha256:...)`);
  }
  const bytes = Buffer.from(hash.slice("sha256-".length), "base64");
  if (bytes.length !== 32) throw new Error(`decoding base64 hash: illegal base64 data in ${hash}`);
  return "sha256:" + encodeNix32(bytes);
}

/** hashFromPathInfo accepts the string form (all Nix/Lix versions) and the Nix ≥ 2.33 object form. */
export function hashFromPathInfo(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    const { algorithm, hash } = value as { algorithm?: unknown; hash?: unknown };
    if (typeof hash === "string" && hash !== "") {
      if (hash.includes(":") || hash.includes("-")) return hash;
      return typeof algorithm === "string" && algorithm !== "" ? `${algorithm}-${hash}` : hash;
    }
  }
  return "";
}
