// The pipeline policy: pure functions from the pipeline context to what the job does. No I/O, no
// environment reads; facts such as "the job has a token" come in as arguments.
//
// With push: auto and pin: auto (product.md, "Pipeline-derived behaviour"):
//
//   pipeline                                   pull  push  pin
//   default branch (push, web, schedule, api)  yes   yes   <project>/<branch>
//   protected branch                           yes   yes   no
//   tag                                        yes   yes   <project>/<tag>
//   other branch of the project                yes   yes   no   (as trusted as a same-project MR)
//   merge request from the same project        yes   yes   no
//   merge request from a fork                  yes   NO    no   (with a notice)
//   no token in the job                        yes   NO    no   (with a notice)
//
// push: always pushes whenever there is a token (the server's bound claims still decide);
// push: never only pulls. pin: never turns pins off; any other pin value is the pin's name.

import { PIN_NAME, type PushMode } from "./settings.ts";
import type { CiContext } from "./ci-context.ts";

export type PipelineKind =
  | "default-branch"
  | "protected-branch"
  | "branch"
  | "tag"
  | "merge-request"
  | "fork-merge-request"
  | "local";

export interface PlanInput {
  installables: readonly string[];
  push: PushMode;
  pin: string;
  hasToken: boolean;
  /** Give every installable its own `base/label` pin, even a single one (warm pins one name per flake output). */
  pinEach?: boolean;
}

export interface PlannedInstallable {
  installable: string;
  /** The pin to set after pushing this installable's closure, if any. */
  pin: string | undefined;
}

export interface JobPlan {
  kind: PipelineKind;
  pull: true;
  push: boolean;
  installables: PlannedInstallable[];
  /** One-line explanations of decisions the user may not expect (why nothing is pushed). */
  notices: string[];
  /** The unsanitized name the pins derive from (`<project>/<branch>`, or the pin setting), when this job pins. */
  pinBase: string | undefined;
}

/** isForkMergeRequest: an MR whose source project differs from its target, wherever the pipeline runs. */
export function isForkMergeRequest(ci: CiContext): boolean {
  const mr = ci.mergeRequest;
  if (!mr) return false;
  if (mr.sourceProjectId && mr.projectId) return mr.sourceProjectId !== mr.projectId;
  // Without both ids GitLab did not say; a source path other than this project is still a fork.
  return mr.sourceProjectPath !== undefined && ci.projectPath !== undefined && mr.sourceProjectPath !== ci.projectPath;
}

export function classifyPipeline(ci: CiContext): PipelineKind {
  if (ci.mergeRequest) return isForkMergeRequest(ci) ? "fork-merge-request" : "merge-request";
  if (ci.tag) return "tag";
  if (ci.branch) {
    if (ci.defaultBranch !== undefined && ci.branch === ci.defaultBranch) return "default-branch";
    return ci.refProtected ? "protected-branch" : "branch";
  }
  return "local";
}

/** sanitizePinName maps any text onto niks3's pin name rule `[A-Za-z0-9._-]`, at most 256 characters. */
export function sanitizePinName(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/-{2,}/g, "-").replace(/^-+|-+$/g, "");
  return (cleaned || "pin").slice(0, 256);
}

/** installableLabel: the short name of an installable, `.#packages.x86_64-linux.hello` → `packages.x86_64-linux.hello`. */
export function installableLabel(installable: string): string {
  const hash = installable.indexOf("#");
  const fragment = hash >= 0 ? installable.slice(hash + 1) : installable;
  return fragment === "" ? "default" : fragment;
}

/** autoPinBase: the pin name pin: auto uses, or undefined where pin: auto does not pin. */
export function autoPinBase(kind: PipelineKind, ci: CiContext): string | undefined {
  const project = ci.projectPath;
  if (!project) return undefined;
  if (kind === "default-branch" && ci.branch) return `${project}/${ci.branch}`;
  if (kind === "tag" && ci.tag) return `${project}/${ci.tag}`;
  return undefined;
}

/**
 * pinNames gives each installable its pin: the base itself for one installable, base/label for
 * several, or base/label always with `each` (warm: the pin of `packages.x86_64-linux.hello` must not
 * depend on how many other outputs the flake has, or a later prune would miss it).
 */
export function pinNames(base: string | undefined, installables: readonly string[], options: { each?: boolean } = {}): (string | undefined)[] {
  if (base === undefined) return installables.map(() => undefined);
  if (installables.length === 1 && !options.each) return [sanitizePinName(base)];
  return installables.map((installable) => sanitizePinName(`${base}/${installableLabel(installable)}`));
}

function pushDecision(kind: PipelineKind, input: PlanInput): { push: boolean; notice?: string } {
  if (input.push === "never") return { push: false, notice: "push: never, so this job only pulls from the cache" };
  if (!input.hasToken) {
    return {
      push: false,
      notice: "no NIKS3_TOKEN in this job (id_tokens not set?), so it only pulls from the cache and pushes nothing",
    };
  }
  if (input.push === "always") return { push: true };
  if (kind === "fork-merge-request") {
    return {
      push: false,
      notice: "merge request from a fork: pulling from the cache only, nothing is pushed (set push: always to override)",
    };
  }
  return { push: true };
}

/** planJob decides pull, push and pins for a job. Pure: the whole policy table lives here. */
export function planJob(input: PlanInput, ci: CiContext): JobPlan {
  const kind = classifyPipeline(ci);
  const decision = pushDecision(kind, input);
  const notices = decision.notice ? [decision.notice] : [];

  let base: string | undefined;
  if (decision.push && input.pin !== "never") {
    base = input.pin === "auto" ? autoPinBase(kind, ci) : input.pin;
  }
  if (base !== undefined && input.pin !== "auto" && !PIN_NAME.test(base)) base = undefined;
  const pins = pinNames(base, input.installables, { each: input.pinEach === true });

  return {
    kind,
    pull: true,
    push: decision.push,
    installables: input.installables.map((installable, index) => ({ installable, pin: pins[index] })),
    notices,
    pinBase: base,
  };
}
