/**
 * Which worker of a WorkerSet takes the next job: how many jobs a worker may hold ahead (by how long
 * tasks take), and of the workers that may take one, the least loaded, a ready one first. Pure
 * functions over the workers' counts; worker-set.ts owns the workers and sends the jobs.
 */

/** What the choice reads of a worker. */
export interface Slot {
  /** Its child is up (a starting worker takes jobs too: its child queues them). */
  readonly ready: boolean;
  /** The jobs sent to it and not yet answered. */
  readonly inflight: readonly unknown[];
  readonly exited: boolean;
  readonly stopping: boolean;
  /** How many jobs it was sent in its life (for maxTasksPerChild). */
  readonly sent: number;
}

/**
 * How many jobs a worker may hold: 2 for long tasks (the one it runs and the next), more while
 * tasks are short.
 */
export function depthFor(serviceMs: number, canTakeBack: boolean): number {
  // a job sent to a worker cannot be taken back without a claim cell: send none ahead
  if (!canTakeBack) return 1;
  if (Number.isNaN(serviceMs)) return 1;
  // Even a long task's worker holds its next job: without it, the worker would sit idle while its
  // result reaches this thread and the next job reaches it, which for a map chunk is two copies of
  // the chunk's data (tens of ms for a chunk of 125 000 numbers or of 25 × 1 MB strings). A job sent
  // ahead costs no one a wait: a worker that becomes free takes it back (worker-set.ts).
  if (serviceMs > 2) return 2;
  if (serviceMs > 0.2) return 4;
  return 32;
}

/** Whether `w` may be sent another job. */
export function mayTake(w: Slot, maxTasksPerChild: number): boolean {
  if (w.exited || w.stopping) return false;
  return !(maxTasksPerChild > 0 && w.sent >= maxTasksPerChild);
}

/**
 * The worker to send the next job to, or undefined when none may take one now. `pending` counts
 * the jobs queued and in flight; `refilled` holds the workers given jobs in this round.
 */
export function pickWorker<W extends Slot>(
  workers: ReadonlySet<W>,
  round: { pending: number; depth: number; refilled: ReadonlySet<W>; maxTasksPerChild: number },
): W | undefined {
  // A starting worker takes jobs too (its child queues them until its initializer is done), so a
  // submitted call is assigned, and counts as running, at once, as in Python's call queue.
  // Prefetch, but never more than a fair share of the outstanding work: a worker that happens to be
  // ready first must not take the jobs another (still starting) worker would run in parallel.
  const fairShare = Math.ceil(round.pending / Math.max(1, workers.size));
  const depth = Math.min(round.depth, Math.max(1, fairShare));
  let best: W | undefined;
  for (const w of workers) {
    if (!mayTake(w, round.maxTasksPerChild)) continue;
    if (w.inflight.length >= (w.ready ? depth : 1)) continue;
    // A worker with jobs ahead gets more once half of them are done, then up to `depth` at once:
    // they leave in one message, where a job per result would cost a message (and, between
    // threads, a wake-up of the worker) per job.
    if (w.ready && w.inflight.length > depth >> 1 && !round.refilled.has(w)) continue;
    // the least loaded, and of those a ready one: a starting worker may take a while yet
    if (
      !best ||
      w.inflight.length < best.inflight.length ||
      (w.inflight.length === best.inflight.length && w.ready && !best.ready)
    )
      best = w;
    if (best.inflight.length === 0 && best.ready) break;
  }
  return best;
}
