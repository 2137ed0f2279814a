// What the job log looks like in GitLab: the bundled helper builds the fixture flake with real Nix;
// each step is a collapsible section that always closes, folded only where nothing needs a look
// (a build's log never is), and the closing table comes last, outside every section.
import { describe, expect, it } from "vitest";
import { PIPELINES } from "../helpers/ci-env.ts";
import { runJob } from "../helpers/ci-job.ts";
import { makeFixtureFlake } from "../helpers/nix.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();

interface Section {
  name: string;
  collapsed: boolean;
  header: string;
  start: number;
  end: number | undefined;
  body: string[];
}

/** parseSections reads GitLab's markers as GitLab does; text outside any section is `outside`. */
function parseSections(log: string): { sections: Section[]; outside: string[] } {
  const sections: Section[] = [];
  const outside: string[] = [];
  let open: Section | undefined;
  for (const line of log.split("\n")) {
    const start = /^\u001b\[0Ksection_start:(\d+):([A-Za-z0-9_.-]+)(\[collapsed=true\])?\r\u001b\[0K(.*)$/.exec(line);
    const end = /^\u001b\[0Ksection_end:(\d+):([A-Za-z0-9_.-]+)\r\u001b\[0K$/.exec(line);
    if (start) {
      expect(open, `section ${start[2]} opened inside ${open?.name}`).toBeUndefined();
      open = { name: start[2] ?? "", collapsed: start[3] !== undefined, header: start[4] ?? "", start: Number(start[1]), end: undefined, body: [] };
      sections.push(open);
    } else if (end) {
      expect(end[2]).toBe(open?.name);
      if (open) open.end = Number(end[1]);
      open = undefined;
    } else if (open) {
      open.body.push(line);
    } else if (line) {
      outside.push(line);
    }
  }
  return { sections, outside };
}

describe("the job log", () => {
  it("a good build: every step in its own closed section, only the build left unfolded, then the table", async () => {
    const job = await runJob({ confDir: bed.confDir, binDir: bed.binDir, flakeDir: makeFixtureFlake().dir, env: bed.jobVariables(PIPELINES.defaultBranch, { NIKS3_INSTALLABLES: ".#default" }) });
    expect(job.run.exitCode, job.run.all).toBe(0);
    const { sections, outside } = parseSections(job.run.stderr);
    const byName = new Map(sections.map((s) => [s.name, s]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(["niks3_configure", "niks3_install", "niks3_build", "niks3_push"]));
    for (const section of sections) {
      expect(section.end, `${section.name} closed`).toBeGreaterThanOrEqual(section.start);
      expect(section.collapsed, section.name).toBe(section.name !== "niks3_build");
    }
    expect(byName.get("niks3_build")?.header).toBe("building .#default");
    expect(byName.get("niks3_build")?.body.join("\n")).toMatch(/building '\/nix\/store\/\S+-fixture-app\.drv'/);
    expect(byName.get("niks3_configure")?.body).toContain(`niks3: pulling from ${bed.server.substituterUrl} (1 trusted key)`);
    // The plan opens the log; the table and the step times close it, outside every section.
    expect(outside[0]).toMatch(/^niks3: pipeline: default branch/);
    expect(outside).toContainEqual(expect.stringMatching(/^niks3: installable\s+status\s+closure\s+pin\s+out path$/));
    expect(outside).toContainEqual(expect.stringMatching(/^niks3: \.#default\s+built\s+520 B\s+acme-widgets-main\s+\/nix\/store\/\S+-fixture-app$/));
    expect(outside.at(-1)).toMatch(/^niks3: steps: install \d+\.\ds, configure \d+\.\ds, build \d+\.\ds, .*push \d+\.\ds$/);
  });

  it("a failed build: the build's log stays unfolded and the failure heads the table", async () => {
    const job = await runJob({ confDir: bed.confDir, binDir: bed.binDir, flakeDir: makeFixtureFlake().dir, env: bed.jobVariables(PIPELINES.mergeRequest, { NIKS3_INSTALLABLES: ".#dep .#broken" }) });
    expect(job.run.exitCode).toBe(1);
    const { sections, outside } = parseSections(job.run.stderr);
    const build = sections.find((s) => s.name === "niks3_build");
    expect(build?.collapsed).toBe(false);
    expect(build?.body).toContainEqual(expect.stringContaining("broken on purpose"));
    const table = outside.filter((line) => /^niks3: \.#/.test(line));
    expect(table[0]).toMatch(/^niks3: \.#broken\s+FAILED\s+-\s+-\s+-$/);
    expect(table[1]).toMatch(/^niks3: \.#dep\s+built\s+136 B/);
  });

  it("an unreachable server: the configure section stays unfolded, with its warning inside", async () => {
    const job = await runJob({
      confDir: bed.confDir,
      binDir: bed.binDir,
      flakeDir: makeFixtureFlake().dir,
      env: bed.jobVariables(PIPELINES.mergeRequest, { NIKS3_SERVER_URL: "http://127.0.0.1:9", NIKS3_PUSH: "never" }),
    });
    expect(job.run.exitCode, job.run.all).toBe(0);
    const configure = parseSections(job.run.stderr).sections.find((s) => s.name === "niks3_configure");
    expect(configure?.collapsed).toBe(false);
    expect(configure?.body.join("\n")).toContain("building without the cache");
  });
});
