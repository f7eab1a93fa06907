/**
 * Ctrl-C. While pools or child processes are running, SIGINT does not just kill the program (which
 * would leave promises pending forever): pools and executors are terminated and their pending work
 * rejects with an `AbortError`, child processes are stopped, and the exit code is set to 130, so a
 * program that awaited the work can report it and end normally. The handler is installed only while
 * there is something to stop, and removes itself when it fires: a second Ctrl-C kills at once.
 */

/** Something SIGINT must stop. */
export interface Interruptible {
  interrupt(reason: Error): void;
}

const tracked = new Set<Interruptible>();

function onInterrupt(): void {
  process.off("SIGINT", onInterrupt);
  const reason = new DOMException("the program was interrupted (SIGINT)", "AbortError");
  const all = [...tracked];
  tracked.clear();
  for (const item of all) item.interrupt(reason as unknown as Error);
  process.exitCode = 130;
}

/** Stops `item` on Ctrl-C until the returned function is called. */
export function stopOnInterrupt(item: Interruptible): () => void {
  if (tracked.size === 0) process.on("SIGINT", onInterrupt);
  tracked.add(item);
  return () => {
    if (tracked.delete(item) && tracked.size === 0) process.off("SIGINT", onInterrupt);
  };
}
