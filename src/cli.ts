#!/usr/bin/env node
/**
 * The command line: `multiprocessing-ts demo | bench | soak | worker | help | --version`. `--help` (or `-h`)
 * after a command prints that command's usage without running it.
 */
import { readFileSync } from "node:fs";

const USAGE = `usage: multiprocessing-ts <command> [options]

  demo     sequential vs parallel on this machine (thread and spawn start methods)
  bench    benchmarks against piscina, tinypool, workerpool and CPython (npm run bench)
  soak     long leak checks: pool cycles, then minutes of steady work (npm run soak)
  worker   a cluster worker: runs the tasks of cluster pools (new Pool({ cluster: url })) from Redis

  multiprocessing-ts <command> --help   what a command does and its options
  multiprocessing-ts --version          the installed version
`;

const COMMANDS: Record<string, string> = {
  demo: `usage: multiprocessing-ts demo [--tasks N] [--size N] [--cluster]

Runs the same CPU-bound tasks sequentially, then on a Pool with one worker per core in each start
method (thread, spawn), checks that the results agree and prints the times and speed-ups (pool
start-up included). On a terminal, each run shows a progress bar on stderr while it goes.

  --tasks N   how many tasks (default: twice the number of cores, at least 4)
  --size N    loop iterations per task (default 150000000); small sizes show the pool's start-up cost
  --cluster   also run the work on a cluster pool (new Pool({ cluster: url })): starts a private
              redis-server on a Unix socket and two worker commands here, and stops them at the end
              (or on Ctrl-C); needs redis-server installed (apt-get install redis-server)
`,
  bench: `usage: multiprocessing-ts bench [--quick] [--scale F] [--only SUITES] [--write]

Measures this library against piscina, tinypool, workerpool, bare worker_threads and
child_process pools and CPython's multiprocessing on the same work, 2 workers each. Peers that are
not installed, and CPython when python3 is missing, are skipped with the reason. On a terminal, a
line on stderr says how long it has run and which suite and row it is on; nothing of it goes to a
file or a pipe.

  --quick         smaller counts and one run per figure
  --scale F       multiply every count by F (default 1; e.g. 0.01 to check that the suites run)
  --only SUITES   comma-separated: calls, map, cpu, workloads, startup, transfer, start, manager,
                  locks, queue, cluster (a redis-server and 2 worker commands here; skipped, saying
                  why, without redis-server)
  --write         also rewrite BENCHMARKS.md in the current folder with the suites that ran
`,
  soak: `usage: multiprocessing-ts soak [--minutes M] [--cycles N]

Long leak checks, in both start methods: N pool create/terminate cycles (file descriptors, handles
and /dev/shm entries must come back), then M minutes of steady work on one pool (heaps must not keep
growing). Exits with code 1 and says what leaked if a check fails. Run it with node --expose-gc for
exact heap figures (npm run soak does).

  --cycles N    pool cycles per start method (default 1000)
  --minutes M   minutes of steady work per start method (default 3)
`,
};

/** The version in the package's package.json (this file is dist/cli.js or src/cli.ts). */
function version(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

const [command = "help", ...rest] = process.argv.slice(2);
const wantsHelp = rest.includes("--help") || rest.includes("-h");

if (command === "--version" || command === "-v" || command === "version") console.log(version());
else if (Object.hasOwn(COMMANDS, command) && wantsHelp) console.log(COMMANDS[command]);
else if (command === "demo") {
  const { runDemo } = await import("./demo/index.js");
  await runDemo(rest);
} else if (command === "bench") {
  // an optional part of the build, resolved at run time: dist/bench/ when built, the top-level bench/ under tsx
  const bench = import.meta.url.endsWith(".ts") ? "../bench/index.ts" : "./bench/index.js";
  const { runBench } = (await import(bench)) as { runBench(argv: string[]): Promise<void> };
  await runBench(rest);
} else if (command === "soak") {
  const soak = import.meta.url.endsWith(".ts") ? "../bench/soak.ts" : "./bench/soak.js";
  const { runSoak } = (await import(soak)) as { runSoak(argv: string[]): Promise<void> };
  await runSoak(rest);
} else if (command === "worker") {
  // the bundle's entry, so that the worker and its local children share one copy of the library
  const entry = import.meta.url.endsWith(".ts") ? "./entries/cluster-worker.ts" : "./bundle/cluster-worker.js";
  const { WORKER_USAGE, runWorker } = (await import(entry)) as typeof import("./entries/cluster-worker.js");
  if (wantsHelp) console.log(WORKER_USAGE);
  else await runWorker(rest);
} else if (command === "help" || command === "--help" || command === "-h") {
  if (rest[0] === "worker") {
    const entry = import.meta.url.endsWith(".ts") ? "./entries/cluster-worker.ts" : "./bundle/cluster-worker.js";
    console.log(((await import(entry)) as typeof import("./entries/cluster-worker.js")).WORKER_USAGE);
  } else console.log(rest[0] && Object.hasOwn(COMMANDS, rest[0]) ? COMMANDS[rest[0]] : USAGE);
} else {
  console.error(`multiprocessing-ts: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exitCode = 2;
}
