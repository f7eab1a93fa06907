/** Entry script of the fallback agent thread (see agent.ts). */
import { type MessagePort, workerData } from "node:worker_threads";
import { runAgent } from "../internal/agent-broker.js";
import { serveAgent } from "./agent.js";

const ports = workerData as { asyncPort: MessagePort; syncPort: MessagePort; flag: Int32Array };
serveAgent(ports, runAgent());
