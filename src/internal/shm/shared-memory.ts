/**
 * Memory that several processes or threads see at once, handed out in small blocks.
 *
 *   thread context: SharedArrayBuffer arenas  ─ waits: Atomics.wait / Atomics.waitAsync
 *   spawn context:  POSIX shared memory arenas (native addon) ─ waits: futex through the addon
 *
 * A block travels as a reference (`BlockRef`): the arena (the SharedArrayBuffer itself, or the
 * segment's name) and an offset; the receiver maps the arena once and reuses it. Segments are
 * unlinked when the process that made them exits; their mappings stay valid in every process that
 * attached them; a process that starts making segments removes those of makers that died without
 * (killed by a signal).
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readlinkSync } from "node:fs";
import { ProcessError } from "../../errors.js";
import { processRuns } from "../pids.js";
import { type NativeShm, type Waiter, loadNative, nativeUnavailableReason } from "./native.js";

export type { Waiter };
import type { SharedMemoryKind, Transport } from "../runtime.js";

const atomicsWaiter: Waiter = {
  wait: (view, index, expected, timeout) => Atomics.wait(view, index, expected, timeout),
  waitAsync(view, index, expected, timeout) {
    const result = Atomics.waitAsync(view, index, expected, timeout);
    if (!result.async) return Promise.resolve(result.value);
    // a pending Atomics.waitAsync does not keep Node's event loop alive by itself: a timer does
    const keepAlive = setTimeout(() => {}, Math.min(timeout + 1000, 0x7fffffff));
    return result.value.finally(() => clearTimeout(keepAlive));
  },
  wake: (view, index, count) => Atomics.notify(view, index, count),
};

/** Async waits on a futex occupy a libuv pool thread: keep each short and loop. */
const NATIVE_ASYNC_SLICE_MS = 20;

function nativeWaiter(): Waiter {
  const native = loadNative()!;
  return {
    wait: (view, index, expected, timeout) => native.wait(view, index, expected, timeout),
    // One short slice per call: it may return "ok" without a wake (a spurious wake-up), so a caller
    // re-checks its condition in a loop, as every caller here does. A wake that lands between two
    // slices is therefore never lost.
    async waitAsync(view, index, expected, timeout) {
      const slice = Math.min(timeout, NATIVE_ASYNC_SLICE_MS);
      // a timer keeps the program alive while it waits, as Atomics.waitAsync does
      const keepAlive = setTimeout(() => {}, slice + 1000);
      try {
        const result = await native.waitAsync(view, index, expected, slice);
        return result === "timed-out" && slice < timeout ? "ok" : result;
      } finally {
        clearTimeout(keepAlive);
      }
    },
    wake: (view, index, count) => native.wake(view, index, count),
  };
}

/** Where a block lives, in a form that can be sent to another process or thread. */
export type BlockRef =
  | { k: "sab"; sab: SharedArrayBuffer; offset: number; bytes: number }
  | { k: "shm"; name: string; size: number; offset: number; bytes: number };

/** A block of shared memory: `bytes` bytes at `offset` in `buffer`, 8-byte aligned. */
export interface Block {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly offset: number;
  readonly bytes: number;
  readonly waiter: Waiter;
  readonly ref: BlockRef;
}

const ARENA = 64 * 1024;

interface Arena {
  buffer: ArrayBuffer | SharedArrayBuffer;
  name?: string;
  used: number;
}

const arenas: Partial<Record<SharedMemoryKind, Arena>> = {};
const attached = new Map<string, ArrayBuffer>();
const created: string[] = [];
let waiters: { sab: Waiter; shm?: Waiter } | undefined;
let cleanupInstalled = false;

function waiterFor(kind: "sab" | "shm"): Waiter {
  waiters ??= { sab: atomicsWaiter };
  if (kind === "sab") return waiters.sab;
  waiters.shm ??= nativeWaiter();
  return waiters.shm;
}

/** Allocates `bytes` (zeroed) in the memory `kind` (the start method's, from its capabilities). */
export function allocate(bytes: number, kind: SharedMemoryKind): Block {
  const size = Math.ceil(bytes / 8) * 8;
  let arena = arenas[kind];
  if (size > ARENA / 4) {
    // a large block (a queue's ring) gets an arena of its own, leaving the shared one to small blocks
    arena = newArena(kind, size);
  } else if (!arena || arena.used + size > arena.buffer.byteLength) {
    arena = arenas[kind] = newArena(kind, ARENA);
  }
  const offset = arena.used;
  arena.used += size;
  const ref: BlockRef = arena.name
    ? { k: "shm", name: arena.name, size: arena.buffer.byteLength, offset, bytes: size }
    : { k: "sab", sab: arena.buffer as SharedArrayBuffer, offset, bytes: size };
  return { buffer: arena.buffer, offset, bytes: size, waiter: waiterFor(ref.k), ref };
}

function newArena(kind: SharedMemoryKind, size: number): Arena {
  if (kind === "sab") return { buffer: new SharedArrayBuffer(size), used: 0 };
  const native = loadNative();
  if (!native) {
    throw new ProcessError(
      `shared memory between processes needs the native addon, which is ${nativeUnavailableReason()}. ` +
        'Reinstall the package where a C++ compiler is available, or use the "thread" start method.',
    );
  }
  const name = `/mpts-${process.pid}-${namespaceTag()}-${randomBytes(6).toString("hex")}`;
  const buffer = native.open(name, size, true);
  created.push(name);
  attached.set(name, buffer);
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    removeOrphans(native);
    process.on("exit", () => {
      for (const n of created) native.unlink(n);
    });
  }
  return { buffer, name, used: 0 };
}

/**
 * This process's pid namespace, in segment names: pids are only compared within one namespace
 * (containers that share /dev/shm need not share pids).
 */
function namespaceTag(): string {
  try {
    return readlinkSync("/proc/self/ns/pid").replace(/\D/g, "");
  } catch {
    return "0";
  }
}

/**
 * Removes the segments of processes that died without unlinking theirs (killed by a signal): the
 * same as their exit would have done. Once per process, when it first creates a segment.
 */
function removeOrphans(native: NativeShm): void {
  const pattern = new RegExp(`^mpts-(\\d+)-${namespaceTag()}-[0-9a-f]+$`);
  let names: string[];
  try {
    names = readdirSync("/dev/shm");
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    if (!processRuns(pid)) native.unlink(`/${name}`);
  }
}

/** Maps the block `ref` names (once per arena and process). */
export function attach(ref: BlockRef): Block {
  if (ref.k === "sab") return { buffer: ref.sab, offset: ref.offset, bytes: ref.bytes, waiter: waiterFor("sab"), ref };
  let buffer = attached.get(ref.name);
  if (!buffer) {
    const native = loadNative();
    if (!native)
      throw new ProcessError(`cannot attach shared memory: the native addon is ${nativeUnavailableReason()}`);
    try {
      buffer = native.open(ref.name, ref.size, false);
    } catch (error) {
      throw new ProcessError(
        "the shared object's memory is gone: the process that created it has exited. Create shared objects in a process that outlives their users.",
        { cause: error },
      );
    }
    attached.set(ref.name, buffer);
  }
  return { buffer, offset: ref.offset, bytes: ref.bytes, waiter: waiterFor("shm"), ref };
}

/** Checks that a block can travel over `transport` (a thread's memory travels only within its process). */
export function checkTransport(ref: BlockRef, transport: Transport, what: string): void {
  if (ref.k === "sab" && transport === "bytes") {
    throw new ProcessError(
      `this ${what} was made for the "thread" start method and cannot be sent to a process; create it with getContext("spawn").${what}() or { context: "spawn" }`,
    );
  }
}
