// Reading the components' spec:inputs from templates/*.yml, for the README's inputs tables and the
// drift tests. Build tooling and tests use it; the CLI does not.

import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

export interface InputSpec {
  name: string;
  description: string;
  type: "string" | "boolean" | "number" | "array";
  default: unknown;
  options?: unknown[];
  regex?: string;
}

export interface ComponentSpec {
  name: string;
  description: string | undefined;
  inputs: InputSpec[];
  /** The job definitions (the template's second document), uninterpolated. */
  body: Record<string, unknown>;
}

export function readComponentSpec(path: string, name: string): ComponentSpec {
  const docs = parseAllDocuments(readFileSync(path, "utf8"));
  const header = (docs[0]?.toJS() ?? {}) as { spec?: { description?: string; inputs?: Record<string, Record<string, unknown>> } };
  const body = (docs[1]?.toJS() ?? {}) as Record<string, unknown>;
  const inputs = Object.entries(header.spec?.inputs ?? {}).map(([inputName, spec]) => ({
    name: inputName,
    description: String(spec.description ?? ""),
    type: (spec.type as InputSpec["type"] | undefined) ?? "string",
    default: spec.default,
    ...(spec.options ? { options: spec.options as unknown[] } : {}),
    ...(spec.regex ? { regex: String(spec.regex) } : {}),
  }));
  return { name, description: header.spec?.description, inputs, body };
}

function formatDefault(input: InputSpec): string {
  if (input.default === undefined) return "*(required)*";
  if (input.type === "array") return "*(see the template)*";
  const text = typeof input.default === "string" ? input.default : JSON.stringify(input.default);
  return text === "" ? '`""`' : `\`${text}\``;
}

/** inputsTable renders a component's inputs as the README shows them: name, description, type, default. */
export function inputsTable(spec: ComponentSpec): string {
  const rows = spec.inputs.map((input) => {
    const allowed = input.options ? ` One of: ${input.options.map((o) => `\`${String(o)}\``).join(", ")}.` : "";
    const description = `${input.description}${allowed}`.replace(/\|/g, "\\|");
    return `| \`${input.name}\` | ${description} | ${input.type} | ${formatDefault(input)} |`;
  });
  return ["| Input | Description | Type | Default |", "|---|---|---|---|", ...rows].join("\n");
}
