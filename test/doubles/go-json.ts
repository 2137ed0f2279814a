// go-json: decode a request body the way the niks3 server's encoding/json does, closely enough
// that the fake server rejects what the real one rejects with a recognisable message: bad JSON,
// wrong value types, negative sizes. Unknown fields are ignored and null means "zero value", as in Go.
// Not reproduced: case-insensitive field names and trailing data after the first JSON value.

export type GoType =
  | "string"
  | "bool"
  | "uint64"
  | "int"
  | { readonly slice: GoType }
  | { readonly map: GoType }
  | { readonly struct: string; readonly fields: Readonly<Record<string, GoType>> };

function goTypeName(t: GoType): string {
  if (typeof t === "string") return t;
  if ("slice" in t) return `[]${goTypeName(t.slice)}`;
  if ("map" in t) return `map[string]${goTypeName(t.map)}`;
  return `server.${t.struct}`;
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return "number";
  return typeof v;
}

function check(v: unknown, t: GoType, where: string): void {
  if (v === null) return;
  const fail = (): never => {
    const numeric = typeof v === "number" && (t === "uint64" || t === "int");
    const kind = numeric ? `number ${String(v)}` : jsonKind(v);
    throw new Error(
      where === ""
        ? `json: cannot unmarshal ${kind} into Go value of type ${goTypeName(t)}`
        : `json: cannot unmarshal ${kind} into Go struct field ${where} of type ${goTypeName(t)}`,
    );
  };
  if (t === "string") return void (typeof v === "string" || fail());
  if (t === "bool") return void (typeof v === "boolean" || fail());
  if (t === "uint64" || t === "int") {
    if (typeof v !== "number" || !Number.isInteger(v) || (t === "uint64" && v < 0)) fail();
    return;
  }
  if ("slice" in t) {
    if (!Array.isArray(v)) fail();
    (v as unknown[]).forEach((item) => check(item, t.slice, where));
    return;
  }
  if (typeof v !== "object" || Array.isArray(v)) fail();
  const obj = v as Record<string, unknown>;
  if ("map" in t) {
    for (const item of Object.values(obj)) check(item, t.map, where);
    return;
  }
  const prefix = where === "" ? t.struct : where;
  for (const [name, ft] of Object.entries(t.fields)) {
    if (name in obj) check(obj[name], ft, `${prefix}.${name}`);
  }
}

/** decodeGoJson parses `text` and checks it against `t`; the error message follows encoding/json. */
export function decodeGoJson<T>(text: string, t: GoType): T {
  if (text.trim() === "") throw new Error("EOF");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    if (/end of JSON input|Unterminated/i.test(msg)) throw new Error("unexpected EOF");
    const pos = /position (\d+)/.exec(msg);
    const ch = pos ? text[Number(pos[1])] : text.trim()[0];
    throw new Error(`invalid character '${ch ?? "?"}' looking for beginning of value`);
  }
  check(v, t, "");
  return v as T;
}
