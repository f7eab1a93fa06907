/**
 * The "spawn" start method: every child is a fresh Node.js (`child_process.spawn` of our entry
 * script), with the parent's `execArgv` so that loaders such as tsx carry over.
 *
 * The channel is an extra stdio pipe (fd 3) carrying framed v8-serialized messages, not Node's IPC
 * channel: one write per tick instead of one per message, and the child notices the parent's death
 * as end-of-file on that pipe however the parent died, even by SIGKILL, and exits. A child too busy
 * to notice is killed all the same: by the kernel or its watchdog (parent-watch.ts) when the parent
 * is gone, and by the parent itself on its way out.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import { FramedSocket } from "../internal/wire/framing.js";
import { spawnEntry } from "../internal/paths.js";
import { pack, type ToParent, unpack } from "../internal/wire/messages.js";
import { childFlags, launchEnvironment } from "./environment.js";
import type { Backend, ChildExit, LaunchOptions, RunningChild } from "../internal/pool/backend.js";

const entry = fileURLToPath(spawnEntry);

// The children still running when this process exits are killed on its way out, while it can still
// do so itself: its exit path is synchronous (process.exit, an uncaught error, the program's end with
// idle pool workers), and a child busy in a loop would not notice the closed channel.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAtExit(child: ChildProcess): void {
  running.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of running) c.kill("SIGKILL");
  });
}

export const spawnBackend: Backend = {
  method: "spawn",
  transport: "bytes",
  sharedMemory: "shm",
  launch(options: LaunchOptions): RunningChild {
    const flags = childFlags("spawn");
    const execArgv = [...flags.execArgv];
    if (options.maxHeapMb) execArgv.push(`--max-old-space-size=${options.maxHeapMb}`);
    const child = spawn(process.execPath, [...execArgv, entry], {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
      windowsHide: true,
      env: {
        ...process.env,
        MULTIPROCESSING_TS_CHILD: JSON.stringify({
          tsx: flags.tsxApi,
          execArgv: launchEnvironment.execArgv,
          cwd: launchEnvironment.cwd,
          preloads: flags.preloads,
          parentPid: process.pid,
        }),
      },
    });
    const channel = new FramedSocket(child.stdio[3] as Socket);
    let exit: ChildExit | undefined;
    let resolveExit!: (exit: ChildExit) => void;
    const exited = new Promise<ChildExit>((resolve) => (resolveExit = resolve));
    const finish = (result: ChildExit) => {
      if (exit) return;
      exit = result;
      channel.destroy();
      resolveExit(result);
    };
    killAtExit(child);
    child.on("exit", (code, signal) => {
      running.delete(child);
      const signo = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
      // V8 aborts a process that runs out of its heap
      finish({ exitcode: signo ? -signo : (code ?? 1), signal: signal ?? null, outOfMemory: signal === "SIGABRT" });
    });
    child.on("error", (error) => {
      running.delete(child);
      process.stderr.write(`multiprocessing-ts: could not start a child process: ${error.message}\n`);
      finish({ exitcode: 1, signal: null });
    });
    const handle: RunningChild = {
      pid: child.pid ?? -1,
      send(message) {
        if (!exit) channel.send(pack(message));
      },
      flush() {
        if (!exit) void channel.flush();
      },
      onMessage: () => {},
      exited,
      terminate() {
        if (!exit) child.kill("SIGTERM");
      },
      kill() {
        if (!exit) child.kill("SIGKILL");
      },
      unref() {
        child.unref();
        channel.unref();
      },
      ref() {
        child.ref();
        channel.ref();
      },
    };
    channel.onMessage = (message) => handle.onMessage(unpack(message) as ToParent);
    channel.send(options.boot);
    return handle;
  },
};
