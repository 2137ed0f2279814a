// Bench figure: upload while building. Wall time of `niks3-gitlab ci` in daemon mode (niks3-hook
// uploads each step as soon as Nix has built it) against build-then-push (the wiki recipe:
// `nix build`, then `niks3 push ./result`), on a chain of slow derivations, with upload latency in
// the niks3 double (NIKS3_DOUBLE_UPLOAD_DELAY_MS: each NAR takes that long, one at a time, like a
// saturated uplink). Target: daemon mode well below build time + upload time.
//   node scripts/bench-upload.ts   (after npm run build; BENCH_RUNS, BENCH_STEPS, BENCH_STEP_SECONDS,
//                                   BENCH_UPLOAD_MS tune it)
// benchUpload() is exported for scripts/bench.ts. Nothing here runs in npm test.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { startFakeNiks3Server } from "../test/doubles/fake-niks3-server.ts";
import { writeNiks3Bin } from "../test/doubles/niks3-bin.ts";
import { PIPELINES } from "../test/helpers/ci-env.ts";
import { nixEnv, testNixConfDir } from "../test/helpers/nix.ts";
import { BUNDLE } from "../test/helpers/repo.ts";
import { makeToken } from "../test/helpers/token.ts";
import { makeUploadFlake } from "../test/helpers/upload.ts";

export interface UploadBenchRow {
  figure: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function benchUpload(options: { runs?: number; steps?: number; stepSeconds?: number; uploadMs?: number } = {}): Promise<UploadBenchRow> {
  const runs = options.runs ?? Number(process.env.BENCH_RUNS ?? 3);
  const steps = options.steps ?? Number(process.env.BENCH_STEPS ?? 6);
  const stepSeconds = options.stepSeconds ?? Number(process.env.BENCH_STEP_SECONDS ?? 2);
  const uploadMs = options.uploadMs ?? Number(process.env.BENCH_UPLOAD_MS ?? 2000);
  const audience = "https://niks3.example.com";
  const token = makeToken({ aud: audience });
  const server = await startFakeNiks3Server({ token, issuer: PIPELINES.defaultBranch.CI_SERVER_URL, oidcAudience: audience });
  const confDir = testNixConfDir();
  const binDir = mkdtempSync(join(tmpdir(), "niks3-bench-upload-bin-"));
  writeNiks3Bin(binDir);
  const env = { ...nixEnv(confDir), PATH: `${binDir}:${process.env.PATH}`, NIKS3_DOUBLE_UPLOAD_DELAY_MS: String(uploadMs) };
  const fresh = () => makeUploadFlake({ slowCount: steps, slowSeconds: stepSeconds }).dir;

  const daemon: number[] = [];
  const build: number[] = [];
  const push: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      // Daemon mode: the whole job, upload included.
      const dir = fresh();
      const started = performance.now();
      const job = await execa(process.execPath, [BUNDLE, "ci"], {
        cwd: dir,
        env: { ...env, ...PIPELINES.defaultBranch, HOME: dir, CI_PROJECT_DIR: dir, NIKS3_SERVER_URL: server.url, NIKS3_TOKEN: token, NIKS3_INSTALLABLES: ".#slow", NIKS3_PIN: "never" },
        reject: false,
        all: true,
      });
      daemon.push(performance.now() - started);
      if (job.exitCode !== 0 || !String(job.all).includes("uploading while building")) throw new Error(`bench-upload: the ci job failed:\n${String(job.all)}`);

      // Build, then push: the recipe's two steps, timed apart.
      const recipeDir = fresh();
      const buildStart = performance.now();
      await execa("nix", ["build", `${recipeDir}#slow`, "--out-link", join(recipeDir, "result")], { env });
      build.push(performance.now() - buildStart);
      const tokenDir = mkdtempSync(join(tmpdir(), "niks3-bench-token-"));
      const tokenFile = join(tokenDir, "token");
      await execa("sh", ["-c", 'umask 077 && cat > "$1"', "sh", tokenFile], { input: token });
      const pushStart = performance.now();
      await execa("niks3", ["push", "--server-url", server.url, "--auth-token-path", tokenFile, join(recipeDir, "result")], { env });
      push.push(performance.now() - pushStart);
    }
  } finally {
    await server.close();
  }
  const sum = median(build) + median(push);
  return {
    figure: `upload while building (${steps} steps × ${stepSeconds} s, ${uploadMs} ms upload each)`,
    value: seconds(median(daemon)),
    baseline: `${seconds(sum)} (build ${seconds(median(build))} + push ${seconds(median(push))})`,
    ratio: `${(median(daemon) / sum).toFixed(2)}×`,
    target: "well below 1× (build + upload)",
  };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const row = await benchUpload();
  console.log(`| figure | measured (median) | baseline, same run | ratio | target |\n|---|---|---|---|---|`);
  console.log(`| ${row.figure} | ${row.value} | ${row.baseline} | ${row.ratio} | ${row.target} |`);
}
