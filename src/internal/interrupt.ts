/**
 * Ctrl-C. Without the library, a program that has no SIGINT listener of its own ends on the first
 * Ctrl-C; the library keeps it that way, but cleanly. While pools or child processes are running,
 * a listener is installed that, on SIGINT:
 *
 *   - when it is the only listener: terminates pools and executors (their pending work rejects
 *     with an `AbortError`), stops child processes, lets the program's handlers of those rejections
 *     run, and exits with code 130 — whatever else (a server, an interval) holds the event loop;
 *   - when the program listens too: does nothing. The program decides what Ctrl-C means, and its
 *     handler finds the pools still usable; children are still stopped when the program exits.
 *
 * The listener is installed only while there is something to stop.
 */

/** Something SIGINT must stop. */
export interface Interruptible {
  interrupt(reason: Error): void;
}

const tracked = new Set<Interruptible>();

function onInterrupt(): void {
  // (loaders that relay signals, such as tsx, hide their own listeners from this list)
  if (process.listeners("SIGINT").some((listener) => listener !== onInterrupt)) return;
  process.off("SIGINT", onInterrupt);
  const reason = new DOMException("the program was interrupted (SIGINT)", "AbortError");
  const all = [...tracked];
  tracked.clear();
  for (const item of all) item.interrupt(reason as unknown as Error);
  process.exitCode = 130;
  // The rejections reach the program's handlers as microtasks, which run before this callback.
  setImmediate(() => process.exit(130));
}

/** Stops `item` on Ctrl-C until the returned function is called. */
export function stopOnInterrupt(item: Interruptible): () => void {
  if (tracked.size === 0) process.on("SIGINT", onInterrupt);
  tracked.add(item);
  return () => {
    if (tracked.delete(item) && tracked.size === 0) process.off("SIGINT", onInterrupt);
  };
}
