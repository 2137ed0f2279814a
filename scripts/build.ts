// Bundles the helper into one ESM file so the installed package starts without resolving a module tree.
import { build } from "esbuild";
import { chmodSync, rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { manifestDefines } from "./manifest-defines.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = `${root}/dist`;

rmSync(outdir, { recursive: true, force: true });
await build({
  // The entry stays small; each command and its dependencies load on first use, so --version and
  // --help start close to bare node. dist/ is self-contained: no node_modules at run time.
  entryPoints: { "niks3-gitlab": `${root}/src/main.ts` },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  splitting: true,
  minify: true,
  legalComments: "none",
  define: manifestDefines(root),
  banner: {
    js: [
      "#!/usr/bin/env node",
      'import { createRequire as __niks3CreateRequire } from "node:module";',
      "const require = __niks3CreateRequire(import.meta.url);",
    ].join("\n"),
  },
  logLevel: "warning",
});
chmodSync(`${outdir}/niks3-gitlab.mjs`, 0o755);
