/**
 * The optional native addon (native/shm.cc): POSIX shared memory and cross-process futex wait/wake.
 * Built when the package installs, or prebuilt in the package (prebuilds/<platform>-<arch>[-musl]/). `MULTIPROCESSING_TS_NO_NATIVE=1` makes the library act as if it
 * were missing: shared primitives of the spawn start method then live in an agent server (see
 * manager/fallback.ts).
 */
import { closeSync, existsSync, openSync, readSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { nativeAddonPaths } from "../paths.js";

/** How a waiting primitive blocks, or waits without blocking. */
export interface Waiter {
  wait(view: Int32Array, index: number, expected: number, timeout: number): "ok" | "not-equal" | "timed-out";
  waitAsync(
    view: Int32Array,
    index: number,
    expected: number,
    timeout: number,
  ): Promise<"ok" | "not-equal" | "timed-out">;
  wake(view: Int32Array, index: number, count: number): number;
}

/**
 * The addon's functions. As a `Waiter`: `wait` blocks this thread (futex, any process); `waitAsync`
 * waits on a libuv pool thread, so keep its timeout short; `wake` wakes waiters in any process.
 */
export interface NativeShm extends Waiter {
  /** Maps segment `name` (created with `size` bytes when `create`; attached when not). Throws with `code` EEXIST/ENOENT. */
  open(name: string, size: number, create: boolean): ArrayBuffer;
  /** Removes segment `name`; false if it did not exist. Mappings stay valid until released. */
  unlink(name: string): boolean;
  /**
   * Has the kernel SIGKILL this process when the thread that spawned it ends (Linux
   * PR_SET_PDEATHSIG); false when the parent is no longer `parentPid` (it died first). Missing
   * from an addon built before it existed.
   */
  dieWithParent?(parentPid: number): boolean;
}

let loaded: NativeShm | null | undefined;
let reason: string | undefined;

/** The addon, or undefined when it is not built, not supported here, or disabled. */
export function loadNative(): NativeShm | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  if (process.env.MULTIPROCESSING_TS_NO_NATIVE === "1") reason = "disabled by MULTIPROCESSING_TS_NO_NATIVE=1";
  else if (process.platform !== "linux") reason = `not supported on ${process.platform}`;
  else {
    const require = createRequire(import.meta.url);
    for (const path of nativeAddonPaths(isMusl() ? "musl" : "glibc")) {
      try {
        loaded = require(path) as NativeShm;
        break;
      } catch (error) {
        reason ??= `not built (${(error as Error).message.split("\n")[0]})`;
      }
    }
    if (loaded) reason = undefined;
  }
  return loaded ?? undefined;
}

/**
 * Whether this Linux runs on musl libc (Alpine). A system without musl's dynamic loader is not; one
 * with it (a glibc system may have it installed too) is when the runtime's own executable names
 * musl's loader as its interpreter, read from the first page of the executable (a fraction of a
 * millisecond, where the process report detect-libc asks for costs every child ~50 ms to start).
 * An executable that names neither loader leaves it to the report: musl when no glibc is reported.
 */
function isMusl(): boolean {
  const loaders = existsSync("/lib") ? readdirSync("/lib") : [];
  if (!loaders.some((file) => file.startsWith("ld-musl-"))) return false;
  const interpreter = elfInterpreter(process.execPath);
  if (interpreter !== undefined) return interpreter.includes("/ld-musl-");
  const report = process.report as { excludeNetwork?: boolean; getReport?(): unknown } | undefined;
  if (!report?.getReport) return true;
  // the report would otherwise look up every network interface (a boolean where Node.js has it)
  const excludeNetwork = report.excludeNetwork;
  if (typeof excludeNetwork === "boolean") report.excludeNetwork = true;
  try {
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    return !header?.glibcVersionRuntime;
  } finally {
    if (typeof excludeNetwork === "boolean") report.excludeNetwork = excludeNetwork;
  }
}

/** The dynamic loader a 64-bit ELF executable asks for (its PT_INTERP), or undefined when it names none or cannot be read. */
function elfInterpreter(path: string): string | undefined {
  let head: Buffer;
  try {
    const fd = openSync(path, "r");
    try {
      head = Buffer.alloc(4096);
      head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return undefined;
  const phoff = Number(head.readBigUInt64LE(32));
  const phentsize = head.readUInt16LE(54);
  const phnum = head.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 56 > head.length) return undefined;
    if (head.readUInt32LE(at) !== 3 /* PT_INTERP */) continue;
    const offset = Number(head.readBigUInt64LE(at + 8));
    const size = Number(head.readBigUInt64LE(at + 32));
    if (offset + size > head.length) return undefined;
    return head.toString("latin1", offset, offset + size).replace(/\0+$/, "");
  }
  return undefined;
}

/** Whether the native addon is in use, and when it is not, why. */
export type NativeAddonStatus =
  | {
      /** The addon loaded: shared memory and wait/wake are native. */
      readonly available: true;
    }
  | {
      /**
       * The addon did not load: the "spawn" start method's primitives fall back to an agent server,
       * its queues to the object broker.
       */
      readonly available: false;
      /** Why not, e.g. `disabled by MULTIPROCESSING_TS_NO_NATIVE=1` or `not built (...)`. */
      readonly reason: string;
    };

/**
 * Whether the native addon (POSIX shared memory and cross-process wait/wake, native/shm.cc) loaded.
 * Without it, the "spawn" start method's locks, events and values are held by an agent server, its
 * queues by the object broker, every operation is a message (tens of microseconds instead of
 * nanoseconds), and `SharedMemory` cannot be used. The "thread" start method never needs the addon.
 */
export function nativeAddonStatus(): NativeAddonStatus {
  return loadNative() ? { available: true } : { available: false, reason: reason! };
}

/** Why `loadNative()` returned undefined. */
export function nativeUnavailableReason(): string | undefined {
  loadNative();
  return reason;
}
