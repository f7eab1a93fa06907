// A bare worker thread: answers every message at once (one message per task, or a chunk).
import { parentPort } from "node:worker_threads";

parentPort!.on("message", (m: { id: number; x?: unknown; xs?: unknown[] }) => {
  parentPort!.postMessage(m.xs ? { id: m.id, xs: m.xs.map((x) => x) } : { id: m.id, x: m.x });
});
