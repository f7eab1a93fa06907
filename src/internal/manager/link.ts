/**
 * A manager connection's fast lane between two threads of one process: a pair of shared-memory
 * queues beside the socket, which then only authenticates, and tells each end when the other is
 * gone. A socket round trip between two threads costs two trips through the event loop's poll and
 * Node's stream machinery; a queue between threads wakes its reader with `Atomics.notify`.
 *
 *   client: hello says "same process, same handoff root, links served" ─► make() ─► { link, offer }
 *           ─► { k: "link", o: offer } on the socket ─► every later request and cancel on the link
 *   server: { k: "link" } ─► open(offer) ─► reads requests from the link, replies on it
 *
 * The queues are made by the public layer, above this one (queues.ts provides them): this module
 * only names what a link does.
 */

/** One end of a link: messages go out in order and come in in order. */
export interface LocalLink {
  /** Sends `message` to the other end; rejects if it could not (then send it on the socket). */
  send(message: unknown): Promise<void>;
  /** The next message from the other end; rejects with the signal's reason when it aborts first. */
  next(signal: AbortSignal): Promise<unknown>;
  /** The next message if one is waiting now, else undefined (for draining what is left). */
  poll(): Promise<unknown>;
}

/** How links are made and opened: provided by the layer that has the queues. */
export interface LocalLinks {
  /** The client's end, and the bytes that let the server open its own (once). */
  make(): { link: LocalLink; offer: Uint8Array };
  /** The server's end of the link that `offer` describes. */
  open(offer: Uint8Array): Promise<LocalLink>;
}

let provided: LocalLinks | undefined;

/** Installs the maker of links (once the queues are loaded). */
export function provideLocalLinks(links: LocalLinks): void {
  provided = links;
}

/** The maker of links, when this thread has one. */
export function localLinks(): LocalLinks | undefined {
  if (process.env.MULTIPROCESSING_TS_MANAGER_LINKS === "0") return undefined;
  return provided;
}
