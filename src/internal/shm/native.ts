/**
 * The optional native addon (native/shm.cc): POSIX shared memory and cross-process futex wait/wake.
 * Built when the package installs, or prebuilt in the package (prebuilds/<platform>-<arch>[-musl]/). `MULTIPROCESSING_TS_NO_NATIVE=1` makes the library act as if it
 * were missing: shared primitives of the spawn start method then live in an agent server (see
 * manager/fallback.ts).
 */
import { existsSync, readdirSync } from "node:fs";
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
 * Whether this Linux runs on musl libc (Alpine), as detect-libc decides: Node.js reports the glibc
 * it runs on, and a musl system has musl's dynamic loader. Both are asked, since a glibc system may
 * have musl's loader installed too, and a runtime may report no C library at all.
 */
function isMusl(): boolean {
  const loaders = existsSync("/lib") ? readdirSync("/lib") : [];
  if (!loaders.some((file) => file.startsWith("ld-musl-"))) return false;
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
