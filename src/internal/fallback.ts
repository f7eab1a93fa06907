/**
 * Shared primitives without shared memory. When the spawn start method has no native addon (not
 * built, or `MULTIPROCESSING_TS_NO_NATIVE=1`), a Lock, Event, Value... is an object held by a broker
 * in the process that made it, and every operation is a message through this process's agent thread
 * (backends/agent.ts). Everything keeps working, including the blocking `…Sync` calls; each
 * operation costs a round trip (tens of microseconds) instead of an atomic instruction.
 */
import type { StartMethod } from "./runtime.js";
import { fallbackAgent } from "../backends/agent.js";
import type { Token } from "./manager-server.js";
import { backendFor } from "./methods.js";
import { loadNative } from "./native.js";

/** A primitive held by a broker: the proxy token of its object there. */
export interface Remote {
  token: Token;
}

/** True when primitives of `method` must use the broker: processes, and no addon. */
export function needsFallback(method: StartMethod): boolean {
  return backendFor(method).sharedMemory === "shm" && !loadNative();
}

/** Creates a `typeid` object on this process's broker (blocking until it exists). */
export function remoteCreate(typeid: string, args: unknown[]): Remote {
  return { token: fallbackAgent().callSync({ op: "create", typeid, args }) as Token };
}

/** An argument naming another broker object. */
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
