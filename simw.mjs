import { Worker } from "node:worker_threads";
const stage = Number(process.argv[2]);
const code = `
const stage = ${stage};
if (stage >= 1) await import("multiprocessing-ts");
if (stage >= 2) { const { register } = await import("node:module"); register("file:///work/main/node_modules/tsx/dist/esm/index.mjs", { data: {} }); }
if (stage >= 3) await import("file:///work/main/.acceptance/02-pool-speedup.ts");
`;
const ws = [];
for (let i = 0; i < 4; i++) ws.push(new Promise((res) => new Worker(code, { eval: true }).on("exit", res)));
await Promise.all(ws);
