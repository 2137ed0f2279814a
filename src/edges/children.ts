// The registry of running child processes, kept apart from proc.ts so that the entry point can
// stop children on SIGTERM without loading execa at start-up.

interface TrackedChild {
  stop: () => void;
  exited: Promise<unknown> | undefined;
}

const running = new Set<TrackedChild>();
let cancelled = false;

/** isCancelled: the job was cancelled; nothing new may start (no push after a killed build). */
export function isCancelled(): boolean {
  return cancelled;
}

/** trackChild registers how to stop a child and when it has ended; call the returned function once it has. */
export function trackChild(stop: () => void, exited?: Promise<unknown>): () => void {
  const entry = { stop, exited };
  running.add(entry);
  return () => running.delete(entry);
}

/**
 * terminateChildren sends SIGTERM to every running child (the job itself was cancelled) and waits
 * until they have ended, at most `graceMs`: GitLab kills the whole job soon after its own SIGTERM.
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
}
