/**
 * The broker flavor of a queue, for the spawn start method without the native addon (no shared
 * memory between processes):
 *
 *   put(x) ─► encode + v8.serialize (here: a bad value is refused at once) ─► QueueCore (owner)
 *   get()  ◄─ deserialize + decode ◄────────────────────────────────────────── QueueCore (owner)
 *
 * The process that creates the queue owns its items (a `QueueCore`); other processes reach it
 * through the object broker, one socket round trip per operation. Items are stored serialized, so a
 * `put` copies the value as it is at that moment, as Python's pickling does. A `put` resolves once
 * the item is in the queue: a process may exit right after it without losing the item.
 */
import { ClosedError, Empty, Full, ProcessError } from "../../errors.js";
import { type Address, type Served, callRemote, serve } from "../wire/broker.js";
import { ownedBytes, packItem, unpackItem } from "./item-codec.js";
import { type FlavorState, type QueueFlavor, emptyMessage, fullMessage } from "./flavor.js";
import { WaitList, deadlineFor } from "../waitlist.js";

/** The queue's state, in its owner process. Items are serialized bytes. */
class QueueCore implements Served {
  readonly #items: Uint8Array[] = [];
  #head = 0;
  #closed = false;
  #unfinished = 0;
  readonly #getters = new WaitList();
  readonly #putters = new WaitList();
  readonly #joiners = new WaitList();
  readonly #pollers = new WaitList();

  constructor(readonly maxsize: number) {}

  get size(): number {
    return this.#items.length - this.#head;
  }

  tryPut(item: Uint8Array): boolean {
    if (this.#closed) throw new ClosedError("cannot put on a closed queue");
    if (this.maxsize > 0 && this.size >= this.maxsize) return false;
    this.#items.push(item);
    this.#unfinished++;
    this.#getters.wakeOne();
    this.#pollers.wakeAll();
    return true;
  }

  tryGet(): Uint8Array | undefined {
    if (this.size === 0) {
      if (this.#closed) throw new ClosedError("the queue is closed and empty");
      return undefined;
    }
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as never;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    this.#putters.wakeOne();
    return item;
  }

  async put(item: Uint8Array, block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<void> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      if (this.tryPut(item)) return;
      if (!block || !(await this.#putters.wait(deadline, signal))) {
        if (this.tryPut(item)) return;
        throw new Full(fullMessage(this.maxsize));
      }
    }
  }

  async get(block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<Uint8Array> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      const item = this.tryGet();
      if (item) return item;
      if (!block || !(await this.#getters.wait(deadline, signal))) {
        const late = this.tryGet();
        if (late) return late;
        throw new Empty(emptyMessage(block, timeout));
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#getters.wakeAll();
    this.#putters.wakeAll();
    this.#pollers.wakeAll();
  }

  /** Waits until an item is there or the queue is closed (true), or the deadline passes (false). */
  async poll(timeout: number | undefined, signal?: AbortSignal): Promise<boolean> {
    const deadline = deadlineFor(timeout);
    for (;;) {
      if (this.size > 0 || this.#closed) return true;
      if (!(await this.#pollers.wait(deadline, signal))) return this.size > 0 || this.#closed;
    }
  }

  taskDone(): void {
    if (this.#unfinished <= 0) throw new ProcessError("taskDone() called more times than there were items");
    if (--this.#unfinished === 0) this.#joiners.wakeAll();
  }

  async join(signal?: AbortSignal): Promise<void> {
    while (this.#unfinished > 0) await this.#joiners.wait(Number.POSITIVE_INFINITY, signal);
  }

  /** Remote calls: every reply carries the size, so proxies can answer `qsize()` without a round trip. */
  call(op: string, args: unknown[], signal: AbortSignal): unknown {
    const withSize = <V>(value: V) => [value, this.size] as const;
    switch (op) {
      case "put":
        return this.put(args[0] as Uint8Array, args[1] as boolean, args[2] as number | undefined, signal).then(
          withSize,
        );
      case "get":
        return this.get(args[0] as boolean, args[1] as number | undefined, signal).then(withSize);
      case "size":
        return withSize(null);
      case "close":
        this.close();
        return withSize(null);
      case "taskDone":
        this.taskDone();
        return withSize(null);
      case "join":
        return this.join(signal).then(withSize);
      case "poll":
        return this.poll(args[0] as number | undefined, signal).then(withSize);
      default:
        throw new ProcessError(`unknown queue operation ${op}`);
    }
  }
}

/** A queue whose items live in its creator: the core there, a proxy elsewhere. */
export class BrokerQueue implements QueueFlavor {
  readonly #core: QueueCore | undefined;
  #target: Address | undefined;
  #knownSize = 0;

  constructor(maxsize: number, target?: Address) {
    if (target) this.#target = target;
    else this.#core = new QueueCore(maxsize);
  }

  async put(item: unknown, block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<void> {
    const bytes = ownedBytes(packItem(item));
    if (this.#core) return this.#core.put(bytes, block, timeout, signal);
    const [, size] = (await callRemote(this.#target!, "put", [bytes, block, timeout], signal)) as [unknown, number];
    this.#knownSize = size;
  }

  putNow(item: unknown, onError: (error: unknown) => void): void {
    const bytes = ownedBytes(packItem(item));
    if (this.#core) {
      this.#core.tryPut(bytes);
      return;
    }
    callRemote(this.#target!, "put", [bytes, true, undefined]).then(
      (reply) => (this.#knownSize = (reply as [unknown, number])[1]),
      onError,
    );
  }

  async get(block: boolean, timeout: number | undefined, signal?: AbortSignal): Promise<unknown> {
    if (this.#core) return unpackItem(await this.#core.get(block, timeout, signal));
    const [bytes, size] = (await callRemote(this.#target!, "get", [block, timeout], signal)) as [Uint8Array, number];
    this.#knownSize = size;
    return unpackItem(bytes);
  }

  /** Exact in the creator; elsewhere, as of this process's last operation on the queue. */
  size(): number {
    return this.#core ? this.#core.size : this.#knownSize;
  }

  close(): void {
    if (this.#core) this.#core.close();
    else void callRemote(this.#target!, "close", []).catch(() => {});
  }

  async poll(timeout: number | undefined): Promise<boolean> {
    if (this.#core) return this.#core.poll(timeout);
    const [ready, size] = (await callRemote(this.#target!, "poll", [timeout])) as [boolean, number];
    this.#knownSize = size;
    return ready;
  }

  taskDone(): void {
    if (this.#core) this.#core.taskDone();
    else callRemote(this.#target!, "taskDone", []).catch(() => {});
  }

  async join(signal: AbortSignal | undefined): Promise<void> {
    if (this.#core) return this.#core.join(signal);
    await callRemote(this.#target!, "join", [], signal);
  }

  reduce(): FlavorState {
    this.#target ??= serve(this.#core!);
    return { owner: this.#target };
  }

  get where(): string {
    return this.#core ? "owner" : "proxy";
  }
}
