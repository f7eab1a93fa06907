/**
 * Which JavaScript runtime this process is: Node.js, or Bun (which runs Node.js programs through its
 * own implementation of Node's modules, with a few gaps this library works around or refuses).
 */
import { createReadStream } from "node:fs";
import { createRequire } from "node:module";
import type { Socket } from "node:net";

/** Bun's version when this process runs under Bun, else undefined. */
export const bunVersion: string | undefined = (process.versions as { bun?: string }).bun;

/**
 * The pipe the parent handed a "spawn" child as `fd`, for a FramedSocket that writes to the fd
 * directly (`syncFd`). Node.js wraps it in a `net.Socket`. Bun's `net.Socket` cannot adopt a file
 * descriptor (it stays silent, and the child, holding nothing open, exits at once), so under Bun
 * the fd is read as a file stream, which Bun reads without blocking a thread, behind the few socket
 * methods a FramedSocket calls: writes never go through it, and the stream keeps the process alive
 * until the parent's end closes.
 */
export function parentPipe(fd: number): Socket {
  if (bunVersion === undefined) {
    // node:net is loaded here, where a "spawn" child needs it, not by every thread that imports this module
    const net = createRequire(import.meta.url)("node:net") as typeof import("node:net");
    return new net.Socket({ fd, readable: true, writable: true });
  }
  const stream = createReadStream("", { fd, highWaterMark: 1 << 16 });
  const pipe = {
    on(event: string, listener: (...args: any[]) => void) {
      stream.on(event, listener);
      return pipe;
    },
    destroy(error?: Error) {
      stream.destroy(error);
      return pipe;
    },
    // the read side ends by itself at end-of-file, and nothing else holds the process
    end: () => pipe,
    ref: () => pipe,
    unref: () => pipe,
  };
  return pipe as unknown as Socket;
}
