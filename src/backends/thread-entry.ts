/**
 * Entry script of a "thread" child. Under tsx on Node 20 the loader is not active in worker threads,
 * so it is registered here before any user module is imported.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Boot, ToChild } from "../internal/wire.js";
import { launchEnvironment } from "./environment.js";

const data = workerData as { boot: Boot; tsx?: string; execArgv: string[] };
launchEnvironment.execArgv = data.execArgv;
launchEnvironment.tsxApi = data.tsx ?? null;
if (data.tsx) {
  const api = (await import(data.tsx)) as { register(): unknown };
  api.register();
}
await import("../index.js");
const { runChild } = await import("../internal/child.js");
const port = parentPort!;
const link = {
  transport: "clone" as const,
  send: (message: unknown, transfer?: readonly unknown[]) => port.postMessage(message, transfer as never),
  flush: () => Promise.resolve(),
  onMessage: (_message: ToChild) => {},
};
port.on("message", (message: ToChild) => link.onMessage(message));
void runChild(link, data.boot);
