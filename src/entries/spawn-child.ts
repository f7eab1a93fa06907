/**
 * A "spawn" child, once its entry script (spawn-entry.ts) has it loaded. The parent's channel is
 * fd 3; the first message says what to do. End-of-file on fd 3 means the parent is gone (even
 * killed by SIGKILL): the child then exits, which in turn closes its own children's channels, so no
 * descendant outlives the tree's root. A child too busy to read it is killed all the same
 * (parent-watch.ts).
 */
import { parentPipe } from "../backends/host.js";
import { failStart, runChild } from "./bootstrap.js";
import { FramedSocket } from "../internal/wire/framing.js";
import { importPreloads, useTsxWhenNeeded } from "./loader.js";
import { type Boot, pack, type ToChild, unpack } from "../internal/wire/messages.js";
import { launchEnvironment } from "../backends/environment.js";
import { dieWithParent, parentWatchReady } from "../backends/parent-watch.js";

/** Runs this process as a child: what its entry script calls once it has loaded this module. */
export async function runSpawnChild(): Promise<void> {
  // What the parent passed on (read once, and removed so that programs this child runs do not see it).
  const inherited = JSON.parse(process.env.MULTIPROCESSING_TS_CHILD ?? "{}") as {
    tsx?: string;
    execArgv?: string[];
    cwd?: string;
    preloads?: string[];
    parentPid?: number;
  };
  delete process.env.MULTIPROCESSING_TS_CHILD;
  // First of all, before any user code can keep this process busy: it dies with its parent.
  if (inherited.parentPid !== undefined && !dieWithParent(inherited.parentPid)) process.exit(0);
  await parentWatchReady();
  if (inherited.execArgv) launchEnvironment.execArgv = inherited.execArgv;
  if (inherited.cwd) launchEnvironment.cwd = inherited.cwd;
  useTsxWhenNeeded(inherited.tsx);
  // Preloads the parent left to us run before anything else, as `--import` would have run them.
  const preloads = inherited.preloads?.length ? importPreloads(inherited.preloads) : undefined;
  const channel = new FramedSocket(parentPipe(3), { syncFd: 3 });
  // Whatever ends this process (process.exit in a task, an uncaught error), queued messages go first.
  process.on("exit", () => void channel.flush());
  let started = false;
  let running = false;
  let exiting = false;
  const link = {
    transport: "bytes" as const,
    ownProcess: true,
    send: (message: unknown) => channel.send(pack(message)),
    flush: () => channel.flush(),
    onMessage: (_message: ToChild) => {},
  };
  preloads?.catch((error: unknown) => failStart(error, link));
  // Messages that arrive while the preloads load wait for them.
  const early: ToChild[] = [];
  channel.onMessage = (packed) => {
    const message = unpack(packed);
    if (started) {
      if (running) link.onMessage(message as ToChild);
      else early.push(message as ToChild);
      return;
    }
    started = true;
    const run = () => {
      running = true;
      void runChild(link, message as Boot);
      for (const m of early.splice(0)) link.onMessage(m);
    };
    if (preloads) void preloads.then(run);
    else run();
  };
  channel.onClose = () => {
    // The parent is gone. Exit now; our own children see their channels close the same way.
    if (exiting) return;
    exiting = true;
    process.exit(started ? 1 : 0);
  };
}
