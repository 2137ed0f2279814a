// Parsing `nix path-info --json`, whose shape changed: Nix ≤ 2.18 and Lix print an array of objects
// with a `path` field; newer Nix prints an object keyed by store path (null for invalid paths).

export interface PathInfo {
  path: string;
  valid: boolean;
  narSize: number | undefined;
  references: string[];
}

type RawInfo = { path?: unknown; valid?: unknown; narSize?: unknown; references?: unknown } | null;

function toInfo(path: string, raw: RawInfo): PathInfo {
  if (raw === null) return { path, valid: false, narSize: undefined, references: [] };
  return {
    path,
    valid: raw.valid !== false,
    narSize: typeof raw.narSize === "number" ? raw.narSize : undefined,
    references: Array.isArray(raw.references) ? raw.references.filter((r): r is string => typeof r === "string") : [],
  };
}

export function parsePathInfoJson(text: string): PathInfo[] {
  const data: unknown = JSON.parse(text);
  if (Array.isArray(data)) {
    return data.flatMap((entry: RawInfo) =>
      entry && typeof entry.path === "string" ? [toInfo(entry.path, entry)] : [],
    );
  }
  if (data && typeof data === "object") {
    return Object.entries(data as Record<string, RawInfo>).map(([path, raw]) => toInfo(path, raw));
  }
  throw new Error("unexpected nix path-info --json output");
}
