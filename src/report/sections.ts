// GitLab's collapsible log sections (`section_start` / `section_end` markers) and the durations of
// the job's steps. A section always closes, also when its step throws. GitLab fixes `collapsed`
// when a section starts: a live section (run) is folded only if the caller says so, and a build's
// never is, since whether it fails is known only at its end; a captured section (capture) is
// printed once its step is done, so it is folded exactly when the step went well.

import type { Logger } from "../log.ts";

/** Clock gives the time in milliseconds since the epoch; tests pass a fake one. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

const CLEAR = "\u001b[0K";
/** GitLab accepts letters, digits, `_`, `.` and `-` in a section name. */
const SECTION_NAME = /^[A-Za-z0-9_.-]+$/;

function checkName(name: string): string {
  if (!SECTION_NAME.test(name)) throw new Error(`invalid log section name: ${name}`);
  return name;
}

/** sectionStart is the marker line that opens a section; `header` is what GitLab shows folded. */
export function sectionStart(name: string, header: string, atMs: number, collapsed: boolean): string {
  const flag = collapsed ? "[collapsed=true]" : "";
  const oneLine = header.replace(/[\r\n]+/g, " ");
  return `${CLEAR}section_start:${Math.floor(atMs / 1000)}:${checkName(name)}${flag}\r${CLEAR}${oneLine}\n`;
}

/** sectionEnd is the marker line that closes a section. */
export function sectionEnd(name: string, atMs: number): string {
  return `${CLEAR}section_end:${Math.floor(atMs / 1000)}:${checkName(name)}\r${CLEAR}\n`;
}

export interface SectionOptions {
  /** Start folded (GitLab shows only the header). Default false. */
  collapsed?: boolean;
}

/** A section that ran with its log held back; `replay` prints it and returns (or throws) its outcome. */
export interface CapturedSection<T> {
  replay(): Promise<T>;
}

/** formatDuration: `0.4s`, `12.3s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes}m${String(seconds).padStart(2, "0")}s`;
}

/**
 * Sections prints a job's steps as GitLab log sections (names prefixed `niks3_` so they never clash
 * with the user's) and keeps how long each step took, for the summary.
 */
export class Sections {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #durations = new Map<string, number>();

  constructor(log: Logger, clock: Clock = systemClock) {
    this.#log = log;
    this.#clock = clock;
  }

  /** run prints `fn`'s log inside a section that closes in `finally`, and records the step's duration. */
  async run<T>(step: string, header: string, fn: () => Promise<T> | T, options: SectionOptions = {}): Promise<T> {
    const name = `niks3_${step}`;
    const start = this.#clock.now();
    this.#log.raw(sectionStart(name, header, start, options.collapsed ?? false));
    try {
      return await fn();
    } finally {
      const end = this.#clock.now();
      this.#record(step, end - start);
      this.#log.raw(sectionEnd(name, end));
    }
  }

  /**
   * capture starts `fn` now, to run alongside other steps, with its log held back. Its section is
   * printed by `replay` with the times it really started and ended, so GitLab's durations are right
   * and parallel steps never interleave their lines. Since its outcome is known by then, the section
   * is folded exactly when the step succeeded without a warning.
   */
  capture<T>(step: string, header: string, fn: (log: Logger) => Promise<T>): CapturedSection<T> {
    const held: ((log: Logger) => void)[] = [];
    let warned = false;
    const buffer: Logger = {
      info: (message) => held.push((log) => log.info(message)),
      warn: (message) => {
        warned = true;
        held.push((log) => log.warn(message));
      },
      raw: (text) => held.push((log) => log.raw(text)),
    };
    const start = this.#clock.now();
    let end = start;
    // Settled here so that a failure waits for replay instead of becoming an unhandled rejection.
    const settled = fn(buffer).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    ).finally(() => {
      end = this.#clock.now();
    });
    return {
      replay: async () => {
        const outcome = await settled;
        const name = `niks3_${step}`;
        this.#log.raw(sectionStart(name, header, start, outcome.ok && !warned));
        for (const line of held) line(this.#log);
        this.#record(step, end - start);
        this.#log.raw(sectionEnd(name, end));
        if (!outcome.ok) throw outcome.error;
        return outcome.value;
      },
    };
  }

  /** durations: milliseconds per step, in the order the steps first ran. */
  durations(): Record<string, number> {
    return Object.fromEntries(this.#durations);
  }

  #record(step: string, ms: number): void {
    this.#durations.set(step, (this.#durations.get(step) ?? 0) + Math.max(0, ms));
  }
}
