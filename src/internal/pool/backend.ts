/**
 * The one abstraction the start methods differ by: a backend launches a running "process" and hands
 * back a handle with a pid, a duplex message channel, an exit promise, terminate and kill. Nothing
 * outside `backends/` knows whether that is an OS process or a worker thread.
 */
import type { SharedMemoryKind, StartMethod, Transport } from "../runtime.js";
import type { Boot, ToChild, ToParent } from "../wire/messages.js";

/** How a launched child ended, in Python's convention: the exit code, or minus the signal number. */
export interface ChildExit {
  exitcode: number;
  /** The signal name for deaths by signal (`"SIGKILL"`), else null. */
  signal: string | null;
  /** True when the child ran out of its heap (`maxHeapMb`), as far as the backend can tell. */
  outOfMemory?: boolean;
}

/** A child being run by a backend. */
export interface RunningChild {
  /** OS process id (the parent's own pid for a worker thread). */
  readonly pid: number;
  /** Sends a message to the child. Dropped silently once the child has exited. */
  send(message: ToChild, transfer?: readonly unknown[]): void;
  /** Sends what `send` queued now, rather than with the other messages of this tick at its end. */
  flush(): void;
  /** Handler for messages from the child. */
  onMessage: (message: ToParent) => void;
  /** Resolves once when the child has ended (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Asks the child to stop (SIGTERM; a thread is stopped and reports -15). */
  terminate(): void;
  /** Stops the child at once (SIGKILL; a thread reports -9). */
  kill(): void;
  /** Lets the parent exit while this child runs (daemons, idle pool workers). */
  unref(): void;
  /** Keeps the parent alive while this child runs. */
  ref(): void;
}

/** Options for launching one child. */
export interface LaunchOptions {
  /** The first message: what the child is for. */
  boot: Boot;
  /** Heap limit in MiB for the child's JavaScript (thread: resourceLimits; spawn: --max-old-space-size). */
  maxHeapMb?: number;
}

export type { SharedMemoryKind };

/** A start method. */
export interface Backend {
  readonly method: StartMethod;
  /** What kind of data its channel carries, for `codec.encode`. */
  readonly transport: Transport;
  /** Shared memory its children can map: SharedArrayBuffers (threads) or POSIX segments (processes). */
  readonly sharedMemory: SharedMemoryKind;
  launch(options: LaunchOptions): RunningChild;
}
