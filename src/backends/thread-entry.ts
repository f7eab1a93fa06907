/**
 * Entry script of a "thread" child. Under tsx on Node 20 the loader is not active in worker threads,
 * so it is registered here before the first TypeScript module is imported.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runChild } from "../internal/child.js";
import type { Boot, ToChild } from "../internal/wire.js";
import { useTsxWhenNeeded } from "../internal/loader.js";
import { launchEnvironment } from "./environment.js";

const data = workerData as { boot: Boot; tsx?: string; execArgv: string[] };
launchEnvironment.execArgv = data.execArgv;
useTsxWhenNeeded(data.tsx);
const port = parentPort!;
const link = {
  transport: "clone" as const,
  send: (message: unknown, transfer?: readonly unknown[]) => port.postMessage(message, transfer as never),
  flush: () => Promise.resolve(),
  onMessage: (_message: ToChild) => {},
};
port.on("message", (message: ToChild) => link.onMessage(message));
void runChild(link, data.boot);
