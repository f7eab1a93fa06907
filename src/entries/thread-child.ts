/**
 * A "thread" child, once its entry script (thread-entry.ts) has it loaded. Under tsx the loader is
 * not active in worker threads, on any Node.js version: tsx registers its hooks in the main thread
 * only (with `module.registerHooks`, in-thread, where tsx uses it; hooks that `module.register`
 * adds in the main thread do not reach a worker either, not even on 22.2.0, whose one hooks thread
 * for all workers 22.3.0 reverted), and Node.js's own type stripping, which would load erasable
 * TypeScript without it, refuses the rest (enums, parameter properties). So tsx is registered here
 * before the first TypeScript module is imported. Nor are the program's `--import` preloads run in
 * worker threads, so they are imported here before anything else.
 */
import { parentPort, workerData } from "node:worker_threads";
import { failStart, runChild } from "./bootstrap.js";
import type { Boot, ToChild } from "../internal/wire/messages.js";
import { importPreloads, useTsxWhenNeeded } from "./loader.js";
import { launchEnvironment } from "../backends/environment.js";
import { adoptThreadLifelines } from "../internal/identity.js";
import { Batcher, unbatch } from "../backends/thread.js";
import { setHandoffRoot } from "../internal/thread-handoff.js";

interface ThreadData {
  boot: Boot;
  handoffRoot: number;
  tsx?: string;
  preloads: string[];
  execArgv: string[];
  cwd: string;
  lifelines: SharedArrayBuffer;
}

/** Runs this thread as a child: what its entry script calls once it has loaded this module. */
export function runThreadChild(): void {
  const data = workerData as ThreadData;
  setHandoffRoot(data.handoffRoot);
  adoptThreadLifelines(data.lifelines);
  launchEnvironment.execArgv = data.execArgv;
  launchEnvironment.cwd = data.cwd;
  useTsxWhenNeeded(data.tsx);
  const port = parentPort!;
  const out = new Batcher((message, transfer) => port.postMessage(message, transfer as never));
  const link = {
    transport: "clone" as const,
    ownProcess: false,
    send: (message: unknown, transfer?: readonly unknown[]) => out.send(message, transfer),
    flush: () => {
      out.flush();
      return Promise.resolve();
    },
    onMessage: (_message: ToChild) => {},
  };
  // Messages that arrive while the preloads load wait for them.
  let early: ToChild[] | undefined = data.preloads.length ? [] : undefined;
  port.on("message", (message: unknown) =>
    unbatch(message, (m) => (early ? early.push(m as ToChild) : link.onMessage(m as ToChild))),
  );
  // Whatever ends this thread (process.exit in a task, an uncaught error), queued messages go first:
  // the parent counts on every result sent before a crash to know which task the crash belongs to.
  process.on("exit", () => out.flush());
  if (early) {
    importPreloads(data.preloads).then(
      () => {
        const queued = early ?? [];
        early = undefined;
        void runChild(link, data.boot);
        for (const m of queued) link.onMessage(m);
      },
      (error: unknown) => failStart(error, link),
    );
  } else void runChild(link, data.boot);
}
