// The registry of running child processes, kept apart from proc.ts so that the entry point can
// stop children on SIGTERM without loading execa at start-up.

const running = new Set<() => void>();

/** trackChild registers how to stop a child; call the returned function when it has ended. */
export function trackChild(stop: () => void): () => void {
  running.add(stop);
  return () => running.delete(stop);
}

/** terminateChildren sends SIGTERM to every running child (used when the job itself is cancelled). */
export function terminateChildren(): void {
  for (const stop of running) stop();
}
