// Our rows of the bench's calls, map and startup suites (the same work, without the peers), for one
// build of the library, so that builds can be compared in one sitting, interleaved:
//
//   node bench/compare-builds.mjs <a checkout>/dist/bundle/index.js     (prints one JSON line)
//
// Pools of 2; 100 000 apply() calls at once, a map of 1 000 000 numbers with default chunking
// (medians of 3 after a warm-up), and a pool's creation to its first result (median of 5).
import { identity } from "./compare-task.mjs";
const { Pool } = await import(new URL(process.argv[2], `file://${process.cwd()}/`).href);
const median = async (runs, fn) => {
  const v = [];
  for (let i = 0; i < runs; i++) v.push(await fn());
  v.sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
const out = {};
for (const context of ["thread", "spawn"]) {
  let pool = new Pool({ processes: 2, context });
  await pool.apply(identity, [0]);
  out[`calls ${context}`] = await median(3, async () => {
    const t0 = performance.now();
    const all = [];
    for (let i = 0; i < 100_000; i++) all.push(pool.apply(identity, [i]));
    await Promise.all(all);
    return 100_000 / ((performance.now() - t0) / 1000);
  });
  await pool.terminate();
  pool = new Pool({ processes: 2, context });
  await pool.apply(identity, [0]);
  const xs = Array.from({ length: 1_000_000 }, (_, i) => i);
  out[`map ${context}`] = await median(3, async () => {
    const t0 = performance.now();
    const r = await pool.map(identity, xs);
    if (r.length !== xs.length) throw new Error("len");
    return xs.length / ((performance.now() - t0) / 1000);
  });
  await pool.terminate();
  out[`startup ${context}`] = await median(5, async () => {
    const t0 = performance.now();
    const p = new Pool({ processes: 2, context });
    await p.apply(identity, [1]);
    const ms = performance.now() - t0;
    await p.terminate();
    return ms;
  });
}
console.log(JSON.stringify(out));
