// A bare BullMQ worker process, the cluster suite's floor: `node bare-bullmq.js <socket> <queue>
// <concurrency>` runs a BullMQ Worker whose processor returns the job's data, prints "ready" once
// it is connected, and exits when its stdin ends (the bench that started it is done or gone).
import { Worker } from "bullmq";

const [path, queue, concurrency] = process.argv.slice(2);
const worker = new Worker(queue!, async (job) => job.data, {
  connection: { path: path!, maxRetriesPerRequest: null },
  concurrency: Number(concurrency),
});
worker.on("error", () => {});
await worker.waitUntilReady();
process.stdout.write("ready\n");
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
