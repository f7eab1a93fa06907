/**
 * What a pool worker's exit means for the jobs it was sent, for WorkerSet's crash recovery: the one
 * it was running, if any (it fails with WorkerCrashedError, or is retried), the ones it had not
 * started (they run elsewhere), and the errors that say why.
 */
import { BrokenProcessPool, WorkerCrashedError } from "../../errors.js";
import type { Job } from "./engine.js";

/** What a dying worker said about its death (see Crash in wire/messages.ts). */
export type Crash = { running: number | null; error: unknown };

/**
 * Takes the job a worker that exited was running out of `inflight` (its unanswered jobs, `ids` their
 * task ids); what is left it never started. `startedFirst`: whether it had started the first one.
 */
export function runningAtExit(
  inflight: Job[],
  ids: number[],
  crash: Crash | undefined,
  startedFirst: boolean,
): Job | undefined {
  // Jobs run one at a time in the order sent, so the first unanswered one was running if the
  // worker had started it (its claim; without claim cells, if it had said it was ready), unless
  // the worker said it died between tasks. A job it never started (sent to a worker already dead,
  // or one still starting) runs elsewhere.
  let running: Job | undefined;
  if (crash) {
    const at = crash.running === null ? -1 : ids.indexOf(crash.running);
    if (at >= 0) running = inflight.splice(at, 1)[0];
  } else if (startedFirst) running = inflight.shift();
  return running;
}

/** The error of a pool whose first worker exited before it could start, when none ever started. */
export function neverStarted(exitcode: number, signal: string | null): BrokenProcessPool {
  const how = signal ? `was killed by ${signal}` : `exited with code ${exitcode}`;
  return new BrokenProcessPool(
    `a worker ${how} before it could start (its error output says why), and no worker of this pool has started`,
  );
}

/** The error of the job a worker was running when it exited. */
export function crashedWhileRunning(
  exit: { pid: number | undefined; exitcode: number; signal: string | null; outOfMemory: boolean },
  crash: Crash | undefined,
  maxHeapMb: number | undefined,
): WorkerCrashedError {
  const { exitcode, signal } = exit;
  const how = exit.outOfMemory
    ? `ran out of memory (its heap limit is ${maxHeapMb ?? "the default"} MiB)`
    : signal
      ? `was killed by ${signal}`
      : crash
        ? `died from an error thrown outside any task (${(crash.error as Error)?.message}), exit code ${exitcode}`
        : `exited with code ${exitcode}`;
  return new WorkerCrashedError(
    `the worker running this task ${how} before it finished (pid ${exit.pid}); the pool replaced it`,
    { exitCode: signal ? null : exitcode, signal },
  );
}
