import { defineConfig } from "vitest/config";
import { manifestDefines } from "./scripts/manifest-defines.ts";

export default defineConfig({
  define: manifestDefines(import.meta.dirname),
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests share one Nix store and spawn real builds; two cores.
    maxWorkers: 2,
  },
});
