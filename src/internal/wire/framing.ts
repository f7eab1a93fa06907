/**
 * Messages over a byte stream (a pipe to a child process, or a Unix socket):
 *
 *   send(msg) ─► small plain data? ─► JSON ─────────┐
 *                   └─ otherwise ─► v8.serialize ───┴─► [u32 kind bit + length][payload] ─► one write per tick ─► socket
 *   socket ─► split frames ─► kind bit? JSON.parse : v8.deserialize ─► onMessage(msg)
 *
 * v8.serialize is the structured-clone wire format, so typed arrays, Map, Set, BigInt and Date keep
 * their types (JSON channels turn a Float64Array into a plain object). A small message made only of
 * what JSON carries exactly (null, booleans, strings, finite numbers other than -0, arrays without
 * holes and plain objects of those) goes as JSON instead: about a fifth of the cost of the
 * serializer's round trip, which dominates a request/reply channel's small messages. The header's
 * top bit says which a frame holds (the payload's first byte cannot: Bun's serializer, which its
 * `node:v8` stands on, does not start with v8's version tag), and the other 31 bits its length.
 * Frames sent in one tick go out in one write: per-message syscalls dominate small-message throughput.
 */
import { writeSync } from "node:fs";
import type { Socket } from "node:net";
import { createRequire } from "node:module";

const HEADER = 4;
let serializer: typeof import("node:v8") | undefined;
/** node:v8, loaded by the first frame that needs it: a thread that only imports this module does not. */
const v8 = () => (serializer ??= createRequire(import.meta.url)("node:v8") as typeof import("node:v8"));
/** The header's top bit: the payload is JSON (else the serializer's). */
const JSON_FRAME = 0x8000_0000;
/** The most bytes one frame's payload may hold (the header's other 31 bits). */
const MAX_PAYLOAD = 0x7fff_ffff;
/** How many values (and containers) a message may have to go as JSON; larger ones go through v8. */
const PLAIN_BUDGET = 64;

/** The arrays and objects met in the message `plainBudget` looks at. */
const seen: object[] = [];

/**
 * What is left of `budget` after the values in `value`, or -1 when `value` is not plain: JSON
 * would not bring it back exactly (undefined, NaN, -0, a hole, a class instance, a typed array, an
 * array or object met twice, which structured clone keeps as one…) or it holds more than `budget`
 * values.
 */
function plainBudget(value: unknown, budget: number): number {
  switch (typeof value) {
    case "string":
    case "boolean":
      return budget - 1;
    case "number":
      return Number.isFinite(value) && (value !== 0 || 1 / value > 0) ? budget - 1 : -1;
    case "object": {
      if (value === null) return budget - 1;
      if (--budget < 0 || seen.includes(value)) return -1;
      seen.push(value);
      const proto = Object.getPrototypeOf(value);
      if (Array.isArray(value)) {
        if (proto !== Array.prototype || value.length > budget) return -1;
        let own = 0;
        for (const key in value) {
          own++;
          budget = plainBudget(value[key as unknown as number], budget);
          if (budget < 0) return -1;
        }
        return own === value.length ? budget : -1; // a hole, or a named property JSON would drop
      }
      if (proto !== Object.prototype && proto !== null) return -1;
      for (const key in value) {
        budget = plainBudget((value as Record<string, unknown>)[key], budget);
        if (budget < 0) return -1;
      }
      return budget;
    }
    default:
      return -1;
  }
}

/** `message` as one frame: its header and payload in one buffer. */
function frame(message: unknown): Buffer {
  const plain = plainBudget(message, PLAIN_BUDGET) >= 0;
  seen.length = 0;
  if (plain) {
    const json = JSON.stringify(message);
    const room = json.length <= 4096 ? json.length * 3 : Buffer.byteLength(json);
    const buffer = Buffer.allocUnsafe(HEADER + room);
    const length = buffer.write(json, HEADER, "utf8");
    buffer.writeUInt32LE((JSON_FRAME | length) >>> 0, 0);
    return buffer.subarray(0, HEADER + length);
  }
  const payload = v8().serialize(message);
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(
      `a message of ${payload.length} bytes cannot be sent: one message carries at most 2 GiB (send the data in parts, or through SharedMemory)`,
    );
  }
  const buffer = Buffer.allocUnsafe(HEADER + payload.length);
  buffer.writeUInt32LE(payload.length, 0);
  buffer.set(payload, HEADER);
  return buffer;
}

/** The message in one frame's payload. */
function unframe(payload: Buffer, json: boolean): unknown {
  return json ? JSON.parse(payload.toString("utf8")) : v8().deserialize(payload);
}

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
    const data = frame(message);
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    if (this.#pendingBytes > 1 << 20) this.#write();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushQueued);
    }
  }

  /** Writes everything queued now. Resolves when the bytes are handed to the OS. */
  flush(): Promise<void> {
    const data = this.#take();
    if (!data) return Promise.resolve();
    return new Promise((resolve) => this.#socket.write(data, () => resolve()));
  }

  // the write at the end of a tick: no callback and no promise, which nobody would wait for
  // one microtask for all the sends of a tick, even when something flushed between them (a child
  // flushes before each task: resetting here queued one microtask per result)
  readonly #flushQueued = () => {
    this.#flushScheduled = false;
    this.#write();
  };

  #write(): void {
    const data = this.#take();
    if (data) this.#socket.write(data);
  }

  /** What is queued, in one buffer, unless written here (on the `syncFd` path) or nothing is. */
  #take(): Buffer | undefined {
    if (this.#pending.length === 0 || this.#closed) return undefined;
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#syncFd === undefined) return data;
    writeFully(this.#syncFd, data);
    return undefined;
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
      const word = data.readUInt32LE(offset);
      const length = word & MAX_PAYLOAD;
      if (data.length - offset - HEADER < length) {
        need = HEADER + length;
        break;
      }
      const payload = data.subarray(offset + HEADER, offset + HEADER + length);
      offset += HEADER + length;
      let message: unknown;
      try {
        message = unframe(payload, word >= JSON_FRAME);
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
  // A result larger than the socket's buffer (a map chunk's, say) waits for the reader: a reader
  // that keeps up drains it in tens of µs, so the wait starts short and grows to 1 ms.
  let waitMs = 0.05;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
      waitMs = 0.05;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EPIPE" || code === "EBADF" || code === "ECONNRESET") return; // the reader is gone
      if (code !== "EAGAIN") throw error;
      Atomics.wait(pause, 0, 0, waitMs);
      waitMs = Math.min(1, waitMs * 2);
    }
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));
