/**
 * The one interface behind `Queue`: where its items live and how a process reaches them.
 *
 *   RingQueue   (ring-queue.ts)  items in a ring in shared memory; every process reads and writes it
 *   BrokerQueue (broker-queue.ts)  items in the creating process; others call it through the broker
 *
 * The public classes (queues.ts) validate arguments and pick a flavor; a flavor takes checked
 * arguments and items as values.
 */
import type { Transport } from "../wire/codec.js";
import type { Address } from "../wire/broker.js";

/** What a flavor sends to another process; `owner` is the creator's broker address. */
export interface FlavorState {
  owner: Address;
}

export interface QueueFlavor {
  /** Encodes `item` at once (throwing for a value that cannot travel), then puts it. */
  put(item: unknown, block: boolean, timeout: number | undefined, signal: AbortSignal | undefined): Promise<void>;
  /** Puts synchronously in order, ignoring any bound; a failure to deliver goes to `onError`. */
  putNow(item: unknown, onError: (error: unknown) => void): void;
  get(block: boolean, timeout: number | undefined, signal: AbortSignal | undefined): Promise<unknown>;
  size(): number;
  close(): void;
  /** True once an item is there or the queue is closed; false after `timeout` ms. */
  poll(timeout: number | undefined): Promise<boolean>;
  taskDone(): void;
  join(signal: AbortSignal | undefined): Promise<void>;
  reduce(transport: Transport): FlavorState;
  /** For `inspect`: where the items are, seen from here. */
  readonly where: string;
}

export function fullMessage(maxsize: number): string {
  return `the queue is full (maxsize ${maxsize})`;
}

export function emptyMessage(block: boolean, timeout: number | undefined): string {
  return block ? `the queue stayed empty for ${timeout} ms` : "the queue is empty";
}
