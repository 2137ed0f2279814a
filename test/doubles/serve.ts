// serve: run the fake niks3 server standalone (demos, gitlab-ci-local tests).
//   node test/doubles/serve.ts --token-file F [--issuer I] [--audience A] [--state-dir D] [--key-name N]
// Prints one JSON line {url, substituterUrl, publicKey, stateDir} on stdout, then serves until
// SIGTERM/SIGINT. The token is read from a file so that it never appears in argv.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startFakeNiks3Server } from "./fake-niks3-server.ts";

const { values } = parseArgs({
  options: {
    "token-file": { type: "string" },
    issuer: { type: "string" },
    audience: { type: "string" },
    "state-dir": { type: "string" },
    "key-name": { type: "string" },
  },
  strict: true,
});

const tokenFile = values["token-file"];
if (tokenFile === undefined) {
  process.stderr.write("serve: --token-file is required\n");
  process.exit(2);
}
const token = readFileSync(tokenFile, "utf8").trim();
if (token === "") {
  process.stderr.write(`serve: token file ${tokenFile} is empty\n`);
  process.exit(2);
}

const server = await startFakeNiks3Server({
  token,
  ...(values.issuer !== undefined ? { issuer: values.issuer } : {}),
  ...(values.audience !== undefined ? { oidcAudience: values.audience } : {}),
  ...(values["state-dir"] !== undefined ? { stateDir: values["state-dir"] } : {}),
  ...(values["key-name"] !== undefined ? { keyName: values["key-name"] } : {}),
});
process.stdout.write(
  JSON.stringify({ url: server.url, substituterUrl: server.substituterUrl, publicKey: server.publicKey, stateDir: server.stateDir }) + "\n",
);

for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    void server.close().then(() => process.exit(0));
  });
}
