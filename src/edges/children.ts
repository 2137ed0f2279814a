// The registry of running child processes, kept apart from proc.ts so that the entry point can
// stop children on SIGTERM without loading execa at start-up.

interface TrackedChild {
  stop: () => void;
  exited: Promise<unknown> | undefined;
  /** Ends it for good when it has not ended within the grace (SIGKILL). */
  kill: (() => void) | undefined;
}

const running = new Set<TrackedChild>();
let cancelled = false;

/** isCancelled: the job was cancelled; nothing new may start (no push after a killed build). */
export function isCancelled(): boolean {
  return cancelled;
}

/** trackChild registers how to stop a child and when it has ended; call the returned function once it has. */
export function trackChild(stop: () => void, exited?: Promise<unknown>, kill?: () => void): () => void {
  const entry = { stop, exited, kill };
  running.add(entry);
  return () => running.delete(entry);
}

/**
 * terminateChildren sends SIGTERM to every running child (the job itself was cancelled) and waits
 * until they have ended, at most `graceMs` (GitLab kills the whole job soon after its own SIGTERM);
 * then kills those that can be killed and have not ended (niks3-hook drains its queue on SIGTERM,
 * which never ends while the server hangs).
 */
export async function terminateChildren(graceMs = 0): Promise<void> {
  cancelled = true;
  const children = [...running];
  for (const child of children) child.stop();
  const exits = children.flatMap((child) => (child.exited ? [child.exited.catch(() => undefined)] : []));
  if (graceMs <= 0 || exits.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([Promise.all(exits), grace]);
  clearTimeout(timer);
  for (const child of children) if (running.has(child)) child.kill?.();
}
