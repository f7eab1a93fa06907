/**
 * Shared memory beside bytes that stay in this process: a thread-method queue item or pipe message
 * is bytes in a ring, and bytes cannot hold a SharedArrayBuffer. The sender deposits the item's
 * SharedArrayBuffers here under an id that the bytes carry; the thread that takes the item claims
 * them with that id, once.
 *
 *   sender:   deposit(sabs) ─► id ──(in the item's bytes, through the ring)──► receiver: claim(id)
 *                 │ "put"                                                           │ "take"
 *                 └──────────────────────► the root holds sabs ◄────────────────────┘
 *                                                  └──── "give", on the receiver's own channel ──►
 *
 * The root is the thread at the top of this process's tree of library threads: the main thread,
 * unless the program first used the library in a worker of its own. It outlives every thread below
 * it, so an item stays claimable after the thread that sent it has exited. Threads below reach it
 * through a BroadcastChannel named after it, and it answers on one named after the claimant.
 *
 * Trade-offs: a claim from another thread waits for the root's event loop, so a root blocked in a
 * synchronous wait (`acquireSync`) delays it; items without shared memory never come here. What an
 * item never taken deposited (one left in a queue nobody reads) stays with the root until the
 * program exits: nothing can tell that a queue is gone from every thread. A put that fails gives
 * its deposit back (`release`).
 */
import { BroadcastChannel, threadId } from "node:worker_threads";

type ToRoot =
  | { t: "put"; id: string; sabs: SharedArrayBuffer[] }
  | { t: "take"; id: string; to: number }
  | { t: "drop"; id: string };
interface Give {
  id: string;
  sabs: SharedArrayBuffer[];
}

let root = threadId;
let next = 0;
/** In the root: deposits not claimed yet, and claims that came before their deposit. */
const held = new Map<string, SharedArrayBuffer[]>();
const early = new Map<string, (sabs: SharedArrayBuffer[]) => void>();
let served: BroadcastChannel | undefined;
/** Claims in the root itself waiting for their deposit. */
let localWaits = 0;
/** Below the root: the channel to it, and this thread's own channel for the answers. */
let toRoot: BroadcastChannel | undefined;
let answers: BroadcastChannel | undefined;
const claims = new Map<string, (sabs: SharedArrayBuffer[]) => void>();

const rootName = (id: number) => `multiprocessing-ts.handoff.${id}`;
const answerName = (id: number) => `multiprocessing-ts.handoff.${root}.to.${id}`;

/** The root thread of this thread's tree, for a thread child to inherit. */
export function handoffRoot(): number {
  return root;
}

/** In a thread child: the root it inherits from its parent. */
export function setHandoffRoot(id: number): void {
  root = id;
}

/** In the root: answers the threads below it. Call before the first of them starts. */
export function serveHandoffs(): void {
  if (root !== threadId || served) return;
  served = new BroadcastChannel(rootName(root));
  // holding deposits does not keep the program alive: a thread waiting for one is alive itself
  served.unref();
  served.onmessage = (event) => {
    const message = (event as { data: ToRoot }).data;
    switch (message.t) {
      case "put":
        store(message.id, message.sabs);
        break;
      case "take": {
        const to = message.to;
        const give = (sabs: SharedArrayBuffer[]) => {
          const channel = new BroadcastChannel(answerName(to));
          channel.postMessage({ id: message.id, sabs } satisfies Give);
          channel.close();
        };
        const sabs = take(message.id);
        if (sabs) give(sabs);
        else early.set(message.id, give);
        break;
      }
      case "drop":
        held.delete(message.id);
        break;
      default:
        message satisfies never;
    }
  };
}

function store(id: string, sabs: SharedArrayBuffer[]): void {
  const waiting = early.get(id);
  if (waiting) {
    early.delete(id);
    waiting(sabs);
  } else held.set(id, sabs);
}

function take(id: string): SharedArrayBuffer[] | undefined {
  const sabs = held.get(id);
  if (sabs) held.delete(id);
  return sabs;
}

function post(message: ToRoot): void {
  toRoot ??= new BroadcastChannel(rootName(root));
  toRoot.unref();
  toRoot.postMessage(message);
}

/** Hands `sabs` to whichever thread of this process takes the item; returns the id the item carries. */
export function deposit(sabs: SharedArrayBuffer[]): string {
  const id = `${threadId}.${++next}`;
  if (root === threadId) store(id, sabs);
  else post({ t: "put", id, sabs });
  return id;
}

/** Gives back what `deposit` took for an item that was never delivered. */
export function release(id: string): void {
  if (root === threadId) held.delete(id);
  else post({ t: "drop", id });
}

/**
 * The shared memory deposited under `id`: at once in the root when it is there, else a promise
 * (from another thread, one round trip through the root's event loop).
 */
export function claim(id: string): SharedArrayBuffer[] | Promise<SharedArrayBuffer[]> {
  if (root === threadId) {
    const sabs = take(id);
    if (sabs) return sabs;
    // the deposit is on its way from the sending thread (it was posted before the item was put):
    // the channel it comes on keeps this thread alive meanwhile
    serveHandoffs();
    served!.ref();
    localWaits++;
    return new Promise((resolve) =>
      early.set(id, (sabs) => {
        if (--localWaits === 0) served!.unref();
        resolve(sabs);
      }),
    );
  }
  if (!answers) {
    answers = new BroadcastChannel(answerName(threadId));
    answers.onmessage = (event) => {
      const { id, sabs } = (event as { data: Give }).data;
      const resolve = claims.get(id);
      claims.delete(id);
      if (claims.size === 0) answers!.unref();
      resolve?.(sabs);
    };
  }
  // a claim waiting for its answer keeps this thread alive, as the get() that made it does
  answers.ref();
  const answer = new Promise<SharedArrayBuffer[]>((resolve) => claims.set(id, resolve));
  post({ t: "take", id, to: threadId });
  return answer;
}
