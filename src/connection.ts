/**
 * `Pipe()` and `Connection`: two connected ends, like Python's `multiprocessing.Pipe`.
 *
 *   a.send(x) ─► queue a→b ─► b.recv()        b.send(y) ─► queue b→a ─► a.recv()
 *
 * Each direction is an unbounded queue owned by the process that made the pipe, so either end can
 * be passed to any process and messages never merge or reorder. `close()` on one end ends the
 * direction it writes: the other end reads what is left, then gets EOFError.
 */
import { inspect } from "node:util";
import { ClosedError, EOFError, ProcessError } from "./errors.js";
import { type Reduced, type Reducible, reduce, registerRebuilder } from "./internal/codec.js";
import { checkTimeout } from "./internal/validate.js";
import { Queue } from "./queues.js";

interface ConnectionState {
  incoming: Queue<unknown> | null;
  outgoing: Queue<unknown> | null;
}

/** One end of a `Pipe`. */
export class Connection implements Reducible {
  #incoming: Queue<unknown> | null;
  #outgoing: Queue<unknown> | null;
  #closed = false;
  #sendError: unknown;

  /** @internal Use `Pipe()`. */
  constructor(incoming: Queue<unknown> | null, outgoing: Queue<unknown> | null) {
    this.#incoming = incoming;
    this.#outgoing = outgoing;
  }

  /** True if this end can receive. */
  get readable(): boolean {
    return this.#incoming !== null;
  }

  /** True if this end can send. */
  get writable(): boolean {
    return this.#outgoing !== null;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends `value` to the other end (structured clone; library objects arrive connected). Returns at
   * once; messages arrive in order. Throws SerializationError for a value that cannot travel.
   */
  send(value: unknown): void {
    this.#check("send");
    if (this.#sendError) throw this.#sendError;
    this.#outgoing!._putNow(value, (error) => (this.#sendError ??= error));
  }

  /** Receives the next message; rejects with EOFError once the other end closed and all was read. */
  async recv(): Promise<any> {
    this.#check("recv");
    try {
      return await this.#incoming!.get();
    } catch (error) {
      if (error instanceof ClosedError) throw new EOFError("the other end of the pipe was closed");
      throw error;
    }
  }

  /** Sends bytes as one message (a copy of `data[offset, offset + size)`). */
  sendBytes(data: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): void {
    const bytes =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (offset < 0 || offset > bytes.length) throw new RangeError(`offset must be within the data (got ${offset})`);
    const end = size === undefined ? bytes.length : offset + size;
    if (size !== undefined && (size < 0 || end > bytes.length)) {
      throw new RangeError(`size must fit in the data after offset (got ${size})`);
    }
    this.send(bytes.slice(offset, end));
  }

  /** Receives one message sent with `sendBytes`, as a Buffer. Rejects if it exceeds `maxLength`. */
  async recvBytes(maxLength?: number): Promise<Buffer> {
    const value = await this.recv();
    if (!(value instanceof Uint8Array)) throw new ProcessError("the message received is not bytes (use recv())");
    if (maxLength !== undefined && value.length > maxLength) {
      throw new ProcessError(`the message is ${value.length} bytes, more than maxLength ${maxLength}`);
    }
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }

  /**
   * Whether a message (or the end of the stream) is waiting: at once without `timeout`, else
   * waiting up to `timeout` ms.
   */
  async poll(timeout = 0): Promise<boolean> {
    this.#check("poll");
    checkTimeout(timeout, "timeout");
    return this.#incoming!._poll(timeout);
  }

  /** Closes this end; the other end's `recv()` rejects with EOFError once it has read everything. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outgoing?.close();
  }

  #check(op: "send" | "recv" | "poll"): void {
    if (this.#closed) throw new ProcessError(`cannot ${op} on a closed connection`);
    if (op === "send" && !this.#outgoing) throw new ProcessError("this end of a one-way pipe can only receive");
    if (op !== "send" && !this.#incoming) throw new ProcessError("this end of a one-way pipe can only send");
  }

  [reduce](): Reduced {
    if (this.#closed) throw new ProcessError("a closed connection cannot be sent to another process");
    const state: ConnectionState = { incoming: this.#incoming, outgoing: this.#outgoing };
    return { kind: "mpts.Connection", state };
  }

  [inspect.custom](): string {
    const mode = this.readable && this.writable ? "duplex" : this.readable ? "read" : "write";
    return `Connection { ${mode}${this.#closed ? ", closed" : ""} }`;
  }
}

registerRebuilder("mpts.Connection", (state) => {
  const s = state as ConnectionState;
  return new Connection(s.incoming, s.outgoing);
});

/**
 * Two connected ends. With `duplex` (default) both can send and receive; otherwise the first can
 * only receive and the second only send, as in Python.
 */
export function Pipe(duplex = true): [Connection, Connection] {
  if (typeof duplex !== "boolean") throw new TypeError(`duplex must be a boolean (got ${typeof duplex})`);
  const aToB = new Queue<unknown>();
  if (!duplex) return [new Connection(aToB, null), new Connection(null, aToB)];
  const bToA = new Queue<unknown>();
  return [new Connection(bToA, aToB), new Connection(aToB, bToA)];
}
