/**
 * The remote flavor of the primitives: without shared memory (the spawn start method with no
 * native addon), each primitive is an object held by an agent server (manager/fallback.ts, referents in
 * manager/referents.ts), and every operation is one call to it, blocking for the `…Sync` ones.
 */
import { type Remote, remoteArg, remoteAsync, remoteCreate, remoteSync } from "../manager/fallback.js";
import type { BarrierFlavor, ConditionFlavor, EventFlavor, SemLockFlavor, SemLockKind } from "./flavor.js";

/** What a remote primitive sends to another process: the token of its object. */
export interface RemoteState {
  remote: Remote;
}

/** True when a primitive arriving with `state` is held by an agent server. */
export function isRemoteState(state: object): state is RemoteState {
  return "remote" in state && state.remote !== undefined;
}

/** The parts every remote primitive shares: its object, and how it travels. */
class RemotePrimitive {
  readonly remote: Remote;

  constructor(remote: Remote) {
    this.remote = remote;
  }

  reduce(): RemoteState {
    return { remote: this.remote };
  }
}

export class RemoteSemLock extends RemotePrimitive implements SemLockFlavor {
  readonly #locks: boolean;

  /** A new one on this process's agent server (`value` permits for a semaphore), or the one `remote` names. */
  constructor(kind: SemLockKind, from: number | Remote) {
    super(typeof from === "number" ? remoteCreate(kind, kind.endsWith("Lock") ? [] : [from]) : from);
    this.#locks = kind.endsWith("Lock");
  }

  acquireSync(block: boolean, timeout: number | undefined): boolean {
    return remoteSync(this.remote, "acquire", { block, timeout });
  }

  acquire(block: boolean, timeout: number | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    return remoteAsync(this.remote, "acquire", [{ block, timeout }], signal);
  }

  release(): void {
    remoteSync(this.remote, "release");
  }

  value(): number {
    if (this.#locks) return remoteSync(this.remote, "locked") ? 0 : 1;
    return remoteSync(this.remote, "getValue");
  }

  describe(): string {
    return "held by an agent server";
  }
}

export class RemoteEvent extends RemotePrimitive implements EventFlavor {
  /** A new event on this process's agent server, or the one `remote` names. */
  constructor(remote: Remote = remoteCreate("Event", [])) {
    super(remote);
  }

  isSet(): boolean {
    return remoteSync(this.remote, "isSet");
  }

  set(): void {
    remoteSync(this.remote, "set");
  }

  clear(): void {
    remoteSync(this.remote, "clear");
  }

  wait(timeout: number | undefined): Promise<boolean> {
    return remoteAsync(this.remote, "wait", [timeout]);
  }

  waitSync(timeout: number | undefined): boolean {
    return remoteSync(this.remote, "wait", timeout);
  }
}

export class RemoteCondition extends RemotePrimitive implements ConditionFlavor {
  /** A new condition over the remote lock `lock`, or the one `remote` names. */
  constructor(from: { lock: RemoteSemLock } | Remote) {
    super("lock" in from ? remoteCreate("Condition", [remoteArg(from.lock.remote)]) : from);
  }

  wait(timeout: number | undefined): Promise<boolean> {
    return remoteAsync(this.remote, "wait", [timeout]);
  }

  waitSync(timeout: number | undefined): boolean {
    return remoteSync(this.remote, "wait", timeout);
  }

  notify(n: number): void {
    remoteSync(this.remote, "notify", n);
  }

  notifyAll(): void {
    remoteSync(this.remote, "notifyAll");
  }
}

export class RemoteBarrier extends RemotePrimitive implements BarrierFlavor {
  /** A new barrier on this process's agent server, or the one `remote` names. */
  constructor(from: { parties: number; timeout: number | undefined } | Remote) {
    super("parties" in from ? remoteCreate("Barrier", [from.parties, { timeout: from.timeout }]) : from);
  }

  /** The agent server counts the arrivals; the last party runs `action` here, then tells it. */
  async wait(timeout: number | undefined, action: (() => unknown) | undefined): Promise<number> {
    const result = (await remoteAsync(this.remote, "wait", [timeout, action !== undefined])) as
      | number
      | { index: number; runAction: true };
    if (typeof result === "number") return result;
    try {
      await action!();
    } catch (error) {
      remoteSync(this.remote, "abort");
      throw error;
    }
    remoteSync(this.remote, "actionDone");
    return result.index;
  }

  nWaiting(): number {
    return remoteSync(this.remote, "nWaiting");
  }

  broken(): boolean {
    return remoteSync(this.remote, "broken");
  }

  abort(): void {
    remoteSync(this.remote, "abort");
  }

  reset(): void {
    remoteSync(this.remote, "reset");
  }
}
