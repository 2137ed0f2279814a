// The test bed most integration tests share: a fake niks3 server on loopback that accepts one
// id_token, a bin dir with the niks3 and niks3-hook doubles, and a private nix.conf. Call
// useNiks3TestBed() at the top of a test file (or inside a describe): it registers the hooks there.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { startFakeNiks3Server, type FakeNiks3Server } from "../doubles/fake-niks3-server.ts";
import { writeNiks3Bin } from "../doubles/niks3-bin.ts";
import { nixEnv, testNixConfDir } from "./nix.ts";
import { makeToken } from "./token.ts";

export interface Niks3TestBedOptions {
  /** The id_token's aud and the server's oidc_audience (default https://niks3.example.com). */
  audience?: string;
  /** The OIDC issuer the server knows, and the token's iss (default https://gitlab.example.com). */
  issuer?: string;
}

export interface Niks3TestBed {
  /** The id_token the server accepts (ready at once, for tables built before the tests run). */
  readonly token: string;
  readonly audience: string;
  /** The fake niks3 server (from beforeAll on); its faults are reset after each test. */
  readonly server: FakeNiks3Server;
  /** A directory with the niks3 and niks3-hook doubles (writeNiks3Bin), for PATH. */
  readonly binDir: string;
  /** NIX_CONF_DIR from testNixConfDir(). */
  readonly confDir: string;
  /** nixEnv(confDir) with binDir first on PATH. */
  env(): NodeJS.ProcessEnv;
  /** A job's variables: the pipeline's, NIKS3_SERVER_URL (this server) and NIKS3_TOKEN, then `settings` over them. */
  jobVariables(pipeline: Record<string, string>, settings?: Record<string, string>): Record<string, string>;
}

export function useNiks3TestBed(options: Niks3TestBedOptions = {}): Niks3TestBed {
  const audience = options.audience ?? "https://niks3.example.com";
  const issuer = options.issuer ?? "https://gitlab.example.com";
  const token = makeToken({ iss: issuer, aud: audience });
  let ready: { server: FakeNiks3Server; binDir: string; confDir: string } | undefined;
  const get = () => {
    if (!ready) throw new Error("useNiks3TestBed: the test bed is used before its beforeAll ran");
    return ready;
  };

  beforeAll(async () => {
    const confDir = testNixConfDir();
    const binDir = mkdtempSync(join(tmpdir(), "niks3-bin-"));
    writeNiks3Bin(binDir);
    const server = await startFakeNiks3Server({ token, issuer, oidcAudience: audience });
    ready = { server, binDir, confDir };
  });
  afterEach(() => {
    if (ready) ready.server.faults = {};
  });
  afterAll(async () => {
    await ready?.server.close();
  });

  return {
    token,
    audience,
    get server() {
      return get().server;
    },
    get binDir() {
      return get().binDir;
    },
    get confDir() {
      return get().confDir;
    },
    env() {
      const { binDir, confDir } = get();
      return { ...nixEnv(confDir), PATH: `${binDir}:${process.env.PATH}` };
    },
    jobVariables(pipeline, settings = {}) {
      return { ...pipeline, NIKS3_SERVER_URL: get().server.url, NIKS3_TOKEN: token, ...settings };
    },
  };
}
