// A child process that runs installNiks3 once and prints the result as JSON (for the cross-process
// race test). argv: <downloadUrl> <cacheDir> <version>
import { installNiks3 } from "../../src/install/index.ts";
import { memoryLogger } from "../../src/log.ts";

const [downloadUrl, cacheDir, version] = process.argv.slice(2);
const log = memoryLogger();
try {
  const result = await installNiks3({
    version: version!,
    downloadUrl: downloadUrl!,
    cacheDir: cacheDir!,
    path: "",
    platform: "linux",
    arch: "x64",
    log,
    sleep: async () => undefined,
  });
  process.stdout.write(`${JSON.stringify({ result, lines: log.lines })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as Error).message, lines: log.lines })}\n`);
  process.exitCode = 1;
}
