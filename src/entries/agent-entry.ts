/** Entry script of the fallback agent thread (see agent.ts). */
import { type MessagePort, workerData } from "node:worker_threads";
import { runAgent } from "./agent-server.js";
import { serveAgent } from "../internal/manager/agent.js";

const ports = workerData as { asyncPort: MessagePort; syncPort: MessagePort; flag: Int32Array };
serveAgent(ports, runAgent());
