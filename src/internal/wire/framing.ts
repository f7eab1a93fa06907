/**
 * Messages over a byte stream (a pipe to a child process, or a Unix socket):
 *
 *   send(msg) ─► v8.serialize ─► [u32 length][payload] ─► batched into one write per tick ─► socket
 *   socket ─► split frames ─► v8.deserialize ─► onMessage(msg)
 *
 * v8.serialize is the structured-clone wire format, so typed arrays, Map, Set, BigInt and Date keep
 * their types (JSON channels turn a Float64Array into a plain object). Frames sent in one tick go out
 * in one write: per-message syscalls, not serialization, dominate small-message throughput.
 */
import { writeSync } from "node:fs";
import type { Socket } from "node:net";
import { deserialize, serialize } from "node:v8";

const HEADER = 4;

/** A message channel over a stream socket. */
export class FramedSocket {
  #socket: Socket;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #chunks: Buffer[] = [];
  #have = 0;
  #need = HEADER;
  #closed = false;
  #closeError: Error | undefined;
  #onMessage: (message: unknown) => void = () => {};
  #onClose: (error?: Error) => void = () => {};
  #held: unknown[] | undefined;

  #syncFd: number | undefined;

  /**
   * With `syncFd`, writes go straight to that file descriptor with blocking semantics: everything
   * sent before `process.exit()` or a crash has reached the kernel, so the parent sees, for
   * example, every result a pool worker produced before it died.
   */
  constructor(socket: Socket, options: { syncFd?: number } = {}) {
    this.#socket = socket;
    this.#syncFd = options.syncFd;
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("error", (error) => this.#close(error));
    socket.on("close", () => this.#close());
    socket.on("end", () => socket.end());
  }

  /** Handler for each incoming message. */
  set onMessage(fn: (message: unknown) => void) {
    this.#onMessage = fn;
  }

  /** Called once when the connection ends (with the error, if one ended it). */
  set onClose(fn: (error?: Error) => void) {
    this.#onClose = fn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Keeps what arrives (and the end of the stream) for the next `listen()`, after `early`: the
   * messages a handshake read past its own are the first of the connection, not an error.
   */
  hold(early: unknown[]): void {
    const held = early;
    this.#onMessage = (message) => held.push(message);
    this.#onClose = () => {};
    this.#held = held;
  }

  /**
   * Sets both handlers and delivers, in order, what was held since `hold()`: its messages, then
   * the end of the stream if it has come.
   */
  listen(onMessage: (message: unknown) => void, onClose: (error?: Error) => void): void {
    const held = this.#held;
    this.#held = undefined;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
    if (!held) return;
    // an end that comes while a held message is handled reaches onClose through #close already
    const ended = this.#closed;
    for (const message of held) onMessage(message);
    if (ended) onClose(this.#closeError);
  }

  /** Queues `message` for sending; all messages of one tick leave in a single write. */
  send(message: unknown): void {
    if (this.#closed) return;
    const payload = serialize(message);
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32LE(payload.length, 0);
    this.#pending.push(header, payload);
    this.#pendingBytes += HEADER + payload.length;
    if (this.#pendingBytes > 1 << 20) this.flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Writes everything queued now. Resolves when the bytes are handed to the OS. */
  flush(): Promise<void> {
    this.#flushScheduled = false;
    if (this.#pending.length === 0 || this.#closed) return Promise.resolve();
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#syncFd !== undefined) {
      writeFully(this.#syncFd, data);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#socket.write(data, () => resolve());
    });
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  /** Flushes and closes the connection. */
  async end(): Promise<void> {
    await this.flush();
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
    this.#close();
  }

  #receive(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    // a large message arrives in many chunks: join them once, when the whole frame is here
    if (this.#have < this.#need) return;
    const data = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#have);
    let offset = 0;
    let need = HEADER;
    while (data.length - offset >= HEADER) {
      const length = data.readUInt32LE(offset);
      if (data.length - offset - HEADER < length) {
        need = HEADER + length;
        break;
      }
      const payload = data.subarray(offset + HEADER, offset + HEADER + length);
      offset += HEADER + length;
      let message: unknown;
      try {
        message = deserialize(payload);
      } catch (error) {
        this.#socket.destroy(error as Error);
        return;
      }
      this.#onMessage(message);
      if (this.#closed) return;
    }
    const rest = data.subarray(offset);
    this.#chunks = rest.length ? [rest] : [];
    this.#have = rest.length;
    this.#need = need;
  }

  #close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#pending = [];
    this.#onClose(error);
  }
}

/** Writes all of `data` to `fd`, waiting out EAGAIN (the fd is non-blocking, shared with a reader). */
function writeFully(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EPIPE" || code === "EBADF" || code === "ECONNRESET") return; // the reader is gone
      if (code !== "EAGAIN") throw error;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));
