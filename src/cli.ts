#!/usr/bin/env node
/**
 * The command line: `multiprocessing-ts demo | bench | soak | help`.
 */
const [command = "help", ...rest] = process.argv.slice(2);

switch (command) {
  case "demo": {
    const { runDemo } = await import("./demo/index.js");
    await runDemo(rest);
    break;
  }
  case "bench": {
    const bench = "./bench/index.js"; // optional part of the build: resolved at run time
    const { runBench } = (await import(bench)) as { runBench(argv: string[]): Promise<void> };
    await runBench(rest);
    break;
  }
  case "soak": {
    const soak = "./bench/soak.js";
    const { runSoak } = (await import(soak)) as { runSoak(argv: string[]): Promise<void> };
    await runSoak(rest);
    break;
  }
  case "worker":
    console.error("multiprocessing-ts worker: the cluster backend is not available in this version.");
    process.exitCode = 2;
    break;
  default:
    console.log(`usage: multiprocessing-ts <command>

  demo     sequential vs parallel on this machine (thread and spawn start methods)
  bench    benchmarks against piscina, tinypool, workerpool and CPython (npm run bench)
  soak     long leak checks: pool cycles, then minutes of steady work (npm run soak)
`);
    if (command !== "help" && command !== "--help") process.exitCode = 2;
}
