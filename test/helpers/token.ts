// Test id_tokens: JWT-shaped tokens with GitLab's claims. Not signed by anything real; the fake
// server compares the whole token, as niks3's static-token path does.
import { randomBytes } from "node:crypto";

export function makeToken(claims: Record<string, unknown> = {}): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: "https://gitlab.example.com",
    aud: "https://niks3.example.com",
    sub: "project_path:acme/widgets:ref_type:branch:ref:main",
    project_path: "acme/widgets",
    ref: "main",
    ref_protected: "true",
    iat: now,
    exp: now + 3600,
    jti: randomBytes(8).toString("hex"),
    ...claims,
  };
  return `${b64({ alg: "RS256", typ: "JWT", kid: "test" })}.${b64(payload)}.${randomBytes(32).toString("base64url")}`;
}
