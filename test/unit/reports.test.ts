// The report writers, from a summary: log sections (with a fake clock), JUnit (read back with a
// real XML parser), annotations, dotenv within GitLab's limits, closure sizes from recorded Nix
// output, and the closing table. Each test names what a user would see.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { memoryLogger } from "../../src/log.ts";
import { closureSizes, formatBytes } from "../../src/nix/closure-size.ts";
import { parsePathInfoJson } from "../../src/nix/path-info.ts";
import { buildAnnotations } from "../../src/report/annotations.ts";
import { DOTENV_KEYS, dotenvReport, renderDotenv } from "../../src/report/dotenv.ts";
import { failureMessage, renderJunit, xmlSafe } from "../../src/report/junit.ts";
import { Sections, sectionEnd, sectionStart, type Clock } from "../../src/report/sections.ts";
import { printResults, type JobSummary } from "../../src/report/summary.ts";
import { writeReports } from "../../src/report/write.ts";

const APP = "/nix/store/6i4dk867g3izaynxzwz38zh54f81d7ng-fixture-app";
const DEP = "/nix/store/84p3yiyjzisbxz5n7f9wqpg515j7lwc9-fixture-dep";
const recorded = (name: string) => readFileSync(new URL(`../fixtures/recorded/${name}`, import.meta.url), "utf8");

function summary(overrides: Partial<JobSummary> = {}): JobSummary {
  return {
    schema: 1,
    pipeline: "default-branch",
    server_url: "https://niks3.example.com",
    substituter: "https://cache.example.com/",
    job: { name: "niks3-build", url: "https://gitlab.example.com/acme/widgets/-/jobs/9", pipeline_id: "90" },
    push: {
      planned: true,
      attempted: true,
      ok: true,
      uploaded: 3,
      cached: 1,
      pinned: ["acme-widgets-main-default"],
      error: undefined,
      runs: [
        { paths: [APP], pin: "acme-widgets-main-default", uploaded: 3, cached: 0, ok: true },
        { paths: [DEP], pin: undefined, uploaded: 0, cached: 1, ok: true },
      ],
    },
    notices: [],
    installables: [
      { installable: ".#default", ok: true, outputs: { out: APP }, closure_size: 520, pin: "acme-widgets-main-default", error: undefined },
      { installable: ".#broken", ok: false, outputs: {}, pin: undefined, error: "\u001b[31;1merror:\u001b[0m builder for 'x.drv' failed\u0007 <here> & there" },
      { installable: ".#dep", ok: true, outputs: { out: DEP }, closure_size: 136, pin: undefined, error: undefined },
    ],
    durations_ms: { install: 100, configure: 50, build: 12_345, push: 800 },
    exit_code: 1,
    ...overrides,
  };
}

function fakeClock(start: number): Clock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => (now += ms) };
}

describe("log sections", () => {
  it("print GitLab's exact markers, with the 0 in \\e[0K and unix seconds", () => {
    expect(sectionStart("niks3_build", "building .#a", 1_700_000_000_999, false)).toBe(
      "\u001b[0Ksection_start:1700000000:niks3_build\r\u001b[0Kbuilding .#a\n",
    );
    expect(sectionStart("niks3_push", "pushing", 1_700_000_001_000, true)).toContain("section_start:1700000001:niks3_push[collapsed=true]\r");
    expect(sectionEnd("niks3_push", 1_700_000_005_000)).toBe("\u001b[0Ksection_end:1700000005:niks3_push\r\u001b[0K\n");
    expect(() => sectionStart("has space", "x", 0, false)).toThrow(/invalid log section name/);
  });

  it("close when the step throws, and record how long each step took", async () => {
    const log = memoryLogger();
    const clock = fakeClock(1_700_000_000_000);
    const sections = new Sections(log, clock);
    await expect(
      sections.run("build", "building", () => {
        clock.advance(4_000);
        throw new Error("nix crashed");
      }),
    ).rejects.toThrow("nix crashed");
    expect(log.lines.at(-1)).toBe("\u001b[0Ksection_end:1700000004:niks3_build\r\u001b[0K\n");
    expect(sections.durations()).toEqual({ build: 4_000 });
  });

  it("a captured step folds only when it went well, and keeps the times it really ran", async () => {
    const log = memoryLogger();
    const clock = fakeClock(1_700_000_000_000);
    const sections = new Sections(log, clock);
    const quiet = sections.capture("install", "installing", async (l) => {
      l.info("found niks3 on PATH");
      clock.advance(2_000);
      return "niks3";
    });
    const noisy = sections.capture("configure", "configuring", async (l) => {
      l.warn("server unreachable");
      return 1;
    });
    const failing = sections.capture("other", "other", async () => {
      throw new Error("checksum mismatch");
    });
    await new Promise((resolve) => setImmediate(resolve)); // the steps settle…
    clock.advance(60_000); // …and are replayed a minute later: the markers still carry the real times
    expect(await quiet.replay()).toBe("niks3");
    expect(await noisy.replay()).toBe(1);
    await expect(failing.replay()).rejects.toThrow("checksum mismatch");
    const text = log.lines.join("");
    expect(text).toContain("section_start:1700000000:niks3_install[collapsed=true]\r");
    expect(text).toContain("section_end:1700000002:niks3_install\r");
    expect(text).toContain("section_start:1700000002:niks3_configure\r");
    expect(text).toContain("section_start:1700000002:niks3_other\r");
    expect(log.lines.indexOf("info: found niks3 on PATH")).toBeGreaterThan(0);
    expect(sections.durations().install).toBe(2_000);
  });
});

describe("JUnit", () => {
  const parse = (xml: string) =>
    new XMLParser({ ignoreAttributes: false, isArray: (name) => name === "testcase" }).parse(xml) as {
      testsuites: { testsuite: { "@_name": string; "@_tests": string; "@_failures": string; "@_time": string; testcase: Record<string, unknown>[] } };
    };

  it("one testcase per installable, failures first; the failure carries the log without terminal codes", () => {
    const xml = renderJunit(summary());
    expect(XMLValidator.validate(xml)).toBe(true);
    const suite = parse(xml).testsuites.testsuite;
    expect(suite).toMatchObject({ "@_name": "niks3-build", "@_tests": "3", "@_failures": "1", "@_time": "12.345" });
    expect(suite.testcase.map((c) => c["@_name"])).toEqual([".#broken", ".#default", ".#dep"]);
    const failure = suite.testcase[0]?.failure as { "@_message": string; "#text": string };
    expect(failure["@_message"]).toBe("error: builder for 'x.drv' failed <here> & there");
    expect(failure["#text"]).toBe("error: builder for 'x.drv' failed <here> & there");
    expect(suite.testcase[1]?.["system-out"]).toBe(`out: ${APP}\nclosure size: 520 B\npin: acme-widgets-main-default\npushed: yes`);
  });

  it.each([
    { log: "building '/nix/store/x.drv'...\nerror: builder for 'x.drv' failed with exit code 1", message: "error: builder for 'x.drv' failed with exit code 1" },
    {
      log: "warning: error: SQLite database '/nix/var/nix/db/db.sqlite' is busy\nbuilding…\nerror: builder for 'x.drv' failed",
      message: "error: builder for 'x.drv' failed",
    },
    { log: "some output\nbuild failed: Error in step 2\nmore output", message: "build failed: Error in step 2" },
    { log: "warning: error: SQLite database is busy\nthe last line", message: "the last line" },
    { log: "", message: "the build failed" },
  ])("the failure's one-line message is the line saying what went wrong: $message", ({ log, message }) => {
    expect(failureMessage(log)).toBe(message);
  });

  it("xmlSafe keeps tabs and newlines, drops what XML 1.0 forbids, and bounds the length", () => {
    expect(xmlSafe("a\tb\nc\u0000\u001b[1md\u000b")).toBe("a\tb\ncd");
    expect(xmlSafe("x".repeat(100_000)).length).toBeLessThan(70_000);
  });
});

describe("annotations", () => {
  it("link the cache, each pin under <substituter>/pins/, the narinfo of what was pushed, and the job", () => {
    const links = buildAnnotations(summary()).niks3?.map((a) => a.external_link);
    expect(links).toEqual([
      { label: "binary cache https://cache.example.com", url: "https://cache.example.com" },
      { label: "pin acme-widgets-main-default", url: "https://cache.example.com/pins/acme-widgets-main-default" },
      { label: ".#default narinfo", url: "https://cache.example.com/6i4dk867g3izaynxzwz38zh54f81d7ng.narinfo" },
      { label: ".#dep narinfo", url: "https://cache.example.com/84p3yiyjzisbxz5n7f9wqpg515j7lwc9.narinfo" },
      { label: "job niks3-build", url: "https://gitlab.example.com/acme/widgets/-/jobs/9" },
    ]);
  });

  it("without a substituter, link the server only", () => {
    const links = buildAnnotations(summary({ substituter: undefined, job: {} })).niks3;
    expect(links).toEqual([{ external_link: { label: "niks3 server https://niks3.example.com", url: "https://niks3.example.com" } }]);
  });
});

describe("dotenv", () => {
  it("writes the documented keys, parseable as GitLab reads them", () => {
    const { text, dropped } = dotenvReport(summary());
    expect(dropped).toEqual([]);
    expect(text.split("\n").filter(Boolean).map((line) => line.split("=")[0])).toEqual([...DOTENV_KEYS]);
    expect(parseEnv(text)).toMatchObject({
      NIKS3_STATUS: "build-failed",
      NIKS3_SUBSTITUTER: "https://cache.example.com/",
      NIKS3_PUSHED: "true",
      NIKS3_PUSHED_COUNT: "3",
      NIKS3_CACHED_COUNT: "1",
      NIKS3_PINS: "acme-widgets-main-default",
      NIKS3_OUT_PATHS: `${APP} ${DEP}`,
    });
    // At most 10 variables: the oldest GitLab limit.
    expect(DOTENV_KEYS.length).toBeLessThanOrEqual(10);
  });

  it("refuses a line break in a value and a key GitLab would reject", () => {
    expect(() => renderDotenv([["NIKS3_X", "a\nINJECTED=1"]])).toThrow(/line break/);
    expect(() => renderDotenv([["NIKS3-X", "a"]])).toThrow(/is not \[A-Za-z0-9_\]\+/);
  });

  it("stays under 5 KB by leaving out the long lists, and says which", () => {
    const many = Array.from({ length: 200 }, (_, i) => ({
      installable: `.#p${i}`,
      ok: true,
      outputs: { out: `/nix/store/${"a".repeat(32)}-package-number-${i}` },
      pin: undefined,
      error: undefined,
    }));
    const { text, dropped } = dotenvReport(summary({ installables: many, exit_code: 0 }));
    expect(dropped).toEqual(["NIKS3_OUT_PATHS"]);
    expect(Buffer.byteLength(text)).toBeLessThan(4096);
    expect(parseEnv(text).NIKS3_STATUS).toBe("success");
  });

  it("says push-failed when the build was good and the push was not", () => {
    const failed = summary({
      installables: [summary().installables[0]!],
      push: { ...summary().push, ok: false, error: "server returned 401: Unauthorized", runs: [] },
      exit_code: 3,
    });
    expect(parseEnv(dotenvReport(failed).text)).toMatchObject({ NIKS3_STATUS: "push-failed", NIKS3_PUSHED: "false" });
  });
});

describe("writeReports", () => {
  it("writes all four files", () => {
    const dir = mkdtempSync(join(tmpdir(), "niks3-reports-"));
    const written = writeReports(dir, summary(), memoryLogger());
    expect(written.map((p) => p.slice(dir.length + 1)).sort()).toEqual(["annotations.json", "junit.xml", "niks3.env", "summary.json"]);
  });

  it("a report dir that cannot be created is one warning, not a failure", () => {
    const file = join(mkdtempSync(join(tmpdir(), "niks3-reports-")), "a-file");
    writeFileSync(file, "");
    const log = memoryLogger();
    expect(writeReports(join(file, "reports"), summary(), log)).toEqual([]);
    expect(log.lines).toEqual([expect.stringMatching(/^warn: could not create the report directory .*; no reports written$/)]);
  });
});

describe("closure sizes", () => {
  it.each(["path-info-nix-2.8.json", "path-info-nix-2.24.json"])("%s: each group's closure counted once; unknown when a path is invalid", (file) => {
    const infos = parsePathInfoJson(recorded(file));
    const [dep, lib, broken] = infos.map((info) => info.path);
    expect(closureSizes(infos, [[dep!], [lib!], [lib!, dep!], [broken!], []])).toEqual([128, 312, 312, undefined, undefined]);
  });

  it("formats bytes as a person reads them", () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(12 * 1024 * 1024), formatBytes(3.2 * 1024 ** 3)]).toEqual([
      "512 B",
      "1.50 KiB",
      "12.0 MiB",
      "3.20 GiB",
    ]);
  });
});

describe("the closing table", () => {
  it("lists failures first, sizes, pins and paths in aligned columns, then each push and the step times", () => {
    const log = memoryLogger();
    printResults(log, summary());
    expect(log.lines).toEqual([
      "info: installable  status  closure  pin                        out path",
      "info: .#broken     FAILED  -        -                          -",
      `info: .#default    built   520 B    acme-widgets-main-default  ${APP}`,
      `info: .#dep        built   136 B    -                          ${DEP}`,
      "info: pushed: 3 new paths uploaded, 1 already cached, pinned acme-widgets-main-default",
      "info:   .#default (pin acme-widgets-main-default): 3 new, 0 already cached",
      "info:   .#dep: 0 new, 1 already cached",
      "info: steps: install 0.1s, configure 0.1s, build 12.3s, push 0.8s",
    ]);
  });
});
