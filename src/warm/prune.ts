// Pruning warm's pins: a pin keeps its closure out of niks3's GC for as long as it exists, so the
// pin of an output that was removed from the flake keeps that output's last closure alive forever.
// With prune, warm deletes such pins. Which pins are "warm's pins of this branch and system" is
// decided here from the names alone (pure); the deleting happens with the token in a 0600 file.

import type { Logger } from "../log.ts";
import { deletePin, listPins, type PinInfo } from "../niks3/pins.ts";
import { sanitizePinName } from "../policy.ts";
import { writeTokenFile } from "../token.ts";
import type { PreparedJob } from "../job/prepare.ts";

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * isWarmPinOf: is `name` a pin warm sets under `base` for `system`? warm names a pin
 * `<base>-<category>.<system>.<attr>` (or `<base>-formatter.<system>`), sanitized; the category and
 * system after the prefix keep other branches (`main-2`), other systems and the build component's
 * single pin (`<base>` itself) out.
 */
export function isWarmPinOf(name: string, base: string, system: string): boolean {
  const prefix = `${sanitizePinName(base)}-`;
  if (!name.startsWith(prefix)) return false;
  const rest = name.slice(prefix.length);
  const sys = escapeRe(system);
  return new RegExp(`^(packages|checks|devShells)\\.${sys}\\..+$`).test(rest) || rest === `formatter.${system}`;
}

export interface StaleInput {
  base: string;
  system: string;
  /** The pins the flake's current outputs get (all of them, filtered out or not). */
  current: ReadonlySet<string>;
  /** Categories whose outputs could not be listed: their pins are left alone. */
  unlisted: readonly string[];
}

/** stalePins: warm's pins of this base and system whose output is no longer in the flake. */
export function stalePins(pins: readonly PinInfo[], input: StaleInput): PinInfo[] {
  const prefix = `${sanitizePinName(input.base)}-`;
  const unlisted = input.unlisted.map((category) => `${prefix}${category}.${input.system}`);
  return pins.filter(
    (pin) =>
      isWarmPinOf(pin.name, input.base, input.system) &&
      !input.current.has(pin.name) &&
      !unlisted.some((start) => pin.name === start || pin.name.startsWith(`${start}.`)),
  );
}

export interface PruneOutcome {
  ok: boolean;
  deleted: string[];
  error?: string;
}

/** prunePins lists the server's pins and deletes the stale ones, stopping at the first failure. */
export async function prunePins(job: PreparedJob, input: StaleInput, cwd: string, log: Logger): Promise<PruneOutcome> {
  if (!job.install || !job.settings.token) return { ok: true, deleted: [] };
  const tokenFile = writeTokenFile(job.settings.token);
  try {
    const options = {
      niks3: job.install.niks3,
      serverUrl: job.settings.serverUrl,
      tokenPath: tokenFile.path,
      debug: job.settings.debug,
      env: job.childEnv,
      cwd,
      log,
    };
    const listed = await listPins(options);
    if (!listed.ok) return { ok: false, deleted: [], error: `listing pins: ${listed.error}` };
    const stale = stalePins(listed.value, input);
    if (stale.length === 0) log.info(`prune: no stale pins under ${sanitizePinName(input.base)}- for ${input.system}`);
    const deleted: string[] = [];
    for (const pin of stale) {
      const result = await deletePin(pin.name, options);
      if (!result.ok) return { ok: false, deleted, error: `deleting pin ${pin.name}: ${result.error}` };
      deleted.push(pin.name);
      log.info(`prune: deleted pin ${pin.name} (its output is no longer in the flake; it pinned ${pin.storePath})`);
    }
    return { ok: true, deleted };
  } finally {
    tokenFile.remove();
  }
}
