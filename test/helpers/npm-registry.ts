// An npm registry on loopback that serves this repository as it would be published (`npm pack`),
// at its own name and version: what the templates' default `helper` installs. It counts requests.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./repo.ts";

export const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  engines: Record<string, string>;
};

export interface PackageRegistry {
  url: string;
  /** Requests of any kind so far. */
  requests: number;
  tarballDownloads: number;
  close(): Promise<void>;
}

/** startPackageRegistry packs the repository (build dist/ first) and serves it. */
export async function startPackageRegistry(): Promise<PackageRegistry> {
  const packDir = mkdtempSync(join(tmpdir(), "niks3-pack-"));
  const file = execFileSync("npm", ["pack", "--silent", "--pack-destination", packDir], { cwd: REPO_ROOT, encoding: "utf8" }).trim().split("\n").at(-1) ?? "";
  const tarball = readFileSync(join(packDir, file));
  const tarballPath = `/${PACKAGE.name}/-/${PACKAGE.name}-${PACKAGE.version}.tgz`;
  const server = createServer((req, res) => {
    registry.requests++;
    if (req.url === `/${PACKAGE.name}`) {
      const dist = {
        tarball: `${registry.url}${tarballPath}`,
        integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
        shasum: createHash("sha1").update(tarball).digest("hex"),
      };
      const { name, version, bin, engines } = PACKAGE;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ name, "dist-tags": { latest: version }, versions: { [version]: { name, version, bin, engines, dist } } }));
    } else if (req.url === tarballPath) {
      registry.tarballDownloads++;
      res.end(tarball);
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const registry: PackageRegistry = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: 0,
    tarballDownloads: 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return registry;
}
