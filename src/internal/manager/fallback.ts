/**
 * Shared primitives without shared memory. When the spawn start method has no native addon (not
 * built, or `MULTIPROCESSING_TS_NO_NATIVE=1`), a Lock, Event, Value... is an object held by the
 * agent server of the process that made it, and every operation is a message through this process's
 * agent thread
 * (manager/agent.ts). Everything keeps working, including the blocking `…Sync` calls; each
 * operation costs a round trip (tens of microseconds) instead of an atomic instruction.
 */
import type { SharedMemoryKind } from "../runtime.js";
import { fallbackAgent } from "./agent.js";
import type { Token } from "./server.js";
import { loadNative, nativeUnavailableReason } from "../shm/native.js";

/** A primitive held by an agent server: the proxy token of its object there. */
export interface Remote {
  token: Token;
}

/**
 * True when primitives in the memory `kind` (the start method's, from its capabilities) must use
 * the fallback: processes, and no addon.
 */
export function needsFallback(kind: SharedMemoryKind): boolean {
  if (kind !== "shm" || loadNative()) return false;
  warnOnce();
  return true;
}

/** Set once this program has warned: processes it starts afterwards inherit it and stay quiet. */
const WARNED = "MULTIPROCESSING_TS_FALLBACK_WARNED";

/**
 * The fallback works, but about a hundred times slower than the addon, and an install that blocks
 * dependency scripts loses the addon silently: say so once, on stderr, the first time a primitive
 * takes it. Choosing the fallback with `MULTIPROCESSING_TS_NO_NATIVE=1` is deliberate and says nothing.
 */
function warnOnce(): void {
  if (process.env[WARNED] === "1" || process.env.MULTIPROCESSING_TS_NO_NATIVE === "1") return;
  process.env[WARNED] = "1";
  const fix =
    process.platform === "linux"
      ? "To fix it, let the package's install script build the addon (it needs a C++ compiler and " +
        "Python): `npm install-scripts approve multiprocessing-ts` where npm blocks install scripts, " +
        'then `npm rebuild multiprocessing-ts`. Or use the "thread" start method, which needs no addon.'
      : 'For full speed use the "thread" start method, which needs no addon.';
  // written at once, not with process.emitWarning: that waits for a tick, which a short-lived child
  // ending in process.exit never reaches
  process.stderr.write(
    `multiprocessing-ts: warning: the native addon is ${nativeUnavailableReason()}, so Lock, Event, ` +
      'Condition, Value, Queue and the other shared objects of the "spawn" start method fall back to ' +
      "objects held by the process that made them: every operation is a message to it, about 100 times " +
      "slower. " +
      `${fix} Set MULTIPROCESSING_TS_NO_NATIVE=1 to use the fallback knowingly and silence this warning.\n`,
  );
}

/** Creates a `typeid` object on this process's agent server (blocking until it exists). */
export function remoteCreate(typeid: string, args: unknown[]): Remote {
  return { token: fallbackAgent().callSync({ op: "create", typeid, args }) as Token };
}

/** An argument naming another object of an agent server. */
export function remoteArg(remote: Remote): unknown {
  return { agentToken: remote.token };
}

/** Calls `method`, blocking this thread until it returns. */
export function remoteSync(remote: Remote, method: string, ...args: unknown[]): any {
  return fallbackAgent().callSync({ op: "call", token: remote.token, method, args });
}

/** Calls `method` without blocking. */
export function remoteAsync(remote: Remote, method: string, args: unknown[], signal?: AbortSignal): Promise<any> {
  return fallbackAgent().call({ op: "call", token: remote.token, method, args }, signal);
}
