/**
 * `Pipe()` and `Connection`: two connected ends, like Python's `multiprocessing.Pipe`.
 *
 *   a.send(x) ─► queue a→b ─► b.recv()        b.send(y) ─► queue b→a ─► a.recv()
 *
 * Each direction is an unbounded queue owned by the process that made the pipe, so either end can
 * be passed to any process and messages never merge or reorder. Every copy of an end (one per
 * process or thread that received it) counts in a table of holders (internal/pipe-holders.ts);
 * `close()` on a copy takes one off, a holder that is gone (exited, killed, crashed) takes all of
 * its own off, and the last one ends the direction that end writes: the other end reads what is
 * left, then gets EOFError. A copy that was sent no longer counts (the one sent does). A reader that finds nothing to read looks for gone holders every
 * `REAP_MS` while it waits.
 *
 * `Listener` and `Client` connect processes that share no parent, over a Unix socket or TCP, with
 * Python's HMAC authkey handshake; each end is a `SocketConnection` with the same methods.
 */
import type { Server } from "node:net";
import { inspect } from "node:util";
import { ClosedError, EOFError, Empty, ProcessError } from "./errors.js";
import { type Reduced, decodeOrImport, encode, reduce, registerRebuilder } from "./internal/wire/codec.js";
import type { FramedSocket } from "./internal/wire/framing.js";
import { HOLDERS_WORDS, type HoldersState, PipeHolders, type Side } from "./internal/pipe-holders.js";
import {
  MessageReader,
  type SocketAddress,
  acceptChannel,
  checkAddress,
  checkAuthkey,
  dialChannel,
  formatAddress,
  listenOn,
  localAddress,
} from "./internal/wire/sockets.js";
import { runtime } from "./internal/runtime.js";
import { type OptionNames, checkInteger, checkOptionNames, checkTimeout, optionNames } from "./internal/validate.js";
import { Queue } from "./queues.js";
import { RawArray } from "./sharedctypes.js";
import { Lock } from "./synchronize.js";

interface ConnectionState {
  incoming: Queue<unknown> | null;
  outgoing: Queue<unknown> | null;
  holders: HoldersState;
  side: Side;
  /** The claim this copy's sender made for it (0 for an end that only receives). */
  claim: number;
}

/**
 * How often a reader waiting on an empty pipe looks for holders of the other end that are gone:
 * the longest it takes to see EOF after the last one died without closing.
 */
const REAP_MS = 100;
const reapSlice = { timeout: REAP_MS } as const;

/** Ends this process received and has not closed: at exit they close, as a process's fds do. */
const received = new Set<Connection>();
let exitHook = false;

function closeReceivedAtExit(): void {
  if (exitHook) return;
  exitHook = true;
  // first in line, so that a close sent through the broker is among the deliveries waited for
  runtime.beforeExit.unshift(() => {
    for (const connection of [...received]) connection.close();
  });
}

/**
 * One end of a `Pipe`.
 *
 * An end can have copies in several processes (one in each process or thread that received it).
 * Each copy closes on its own; the direction this end writes ends, and the other end's `recv()`
 * gets EOFError, when the last copy closes or its holder is gone, however it ended. So the parent
 * may close its copy of an end right after handing it to a child, as in Python.
 */
export class Connection {
  #incoming: Queue<unknown> | null;
  #outgoing: Queue<unknown> | null;
  /** Who holds copies of either end, in every process. */
  #holders: PipeHolders;
  /** The direction this end writes (a receive-only end reads the other one). */
  #side: Side;
  #closed = false;
  /**
   * Whether this copy counts among the holders of the end it writes. A copy that was sent stops
   * counting: the receiver's copy counts instead, so that the other end gets EOFError once that one
   * is closed or gone, whether or not the sender ever closes its own (Python's `p.start();
   * child_conn.close()` and the program that never closes it both work).
   */
  #counted = true;
  #sendError: unknown;

  /** @internal Use `Pipe()`. */
  constructor(incoming: Queue<unknown> | null, outgoing: Queue<unknown> | null, holders: PipeHolders, side: Side) {
    this.#incoming = incoming;
    this.#outgoing = outgoing;
    this.#holders = holders;
    this.#side = side;
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

  /**
   * Receives the next message; rejects with EOFError once every copy of the other end is closed or
   * its holder gone, and all was read.
   */
  async recv(): Promise<any> {
    this.#check("recv");
    try {
      for (;;) {
        try {
          // a message already there comes at once; only a reader left waiting looks for gone holders
          return await this.#incoming!.get(reapSlice);
        } catch (error) {
          if (!(error instanceof Empty)) throw error;
        }
        this.#reapWriters();
      }
    } catch (error) {
      if (error instanceof ClosedError) throw new EOFError("the other end of the pipe was closed");
      throw error;
    }
  }

  /** Ends the direction this end reads if no holder of the other end is left. */
  #reapWriters(): void {
    if (this.#holders.reap((1 - this.#side) as Side)) this.#incoming!.close();
  }

  /** Sends bytes as one message (a copy of `data[offset, offset + size)`). */
  sendBytes(data: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): void {
    this.send(byteSlice(data, offset, size));
  }

  /** Receives one message sent with `sendBytes`, as a Buffer. Rejects if it exceeds `maxLength`. */
  async recvBytes(maxLength?: number): Promise<Buffer> {
    return asBytes(await this.recv(), maxLength);
  }

  /**
   * Whether a message (or the end of the stream) is waiting: at once without `timeout`, else
   * waiting up to `timeout` ms.
   */
  async poll(timeout = 0): Promise<boolean> {
    this.#check("poll");
    checkTimeout(timeout, "timeout");
    const deadline = performance.now() + timeout;
    for (;;) {
      const left = deadline - performance.now();
      if (await this.#incoming!._poll(Math.max(0, Math.min(left, REAP_MS)))) return true;
      if (left <= REAP_MS) return false;
      this.#reapWriters();
    }
  }

  /** Closes this end; the other end's `recv()` rejects with EOFError once it has read everything. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    received.delete(this);
    if (this.#outgoing && this.#counted && this.#holders.release(this.#side)) this.#outgoing.close();
  }

  #check(op: "send" | "recv" | "poll"): void {
    if (this.#closed) throw new ProcessError(`cannot ${op} on a closed connection`);
    if (op === "send" && !this.#outgoing) throw new ProcessError("this end of a one-way pipe can only receive");
    if (op !== "send" && !this.#incoming) throw new ProcessError("this end of a one-way pipe can only send");
  }

  /** @internal Sends this end to another process, which takes it over; a closed end cannot be sent (ProcessError). */
  [reduce](): Reduced {
    if (this.#closed) throw new ProcessError("a closed connection cannot be sent to another process");
    // the copy this makes counts from now, so that closing this one at once leaves it working
    const claim = this.#outgoing ? this.#holders.claim(this.#side) : 0;
    if (this.#outgoing && this.#counted) {
      // handed over: the copy sent holds the end from now on (its claim, then its receiver)
      this.#counted = false;
      this.#holders.release(this.#side);
    }
    const state: ConnectionState = {
      incoming: this.#incoming,
      outgoing: this.#outgoing,
      holders: this.#holders.state,
      side: this.#side,
      claim,
    };
    return { kind: "mpts.Connection", state };
  }

  /** Shows which ways it carries (duplex, read or write) and whether it is closed. */
  [inspect.custom](): string {
    const mode = this.readable && this.writable ? "duplex" : this.readable ? "read" : "write";
    return `Connection { ${mode}${this.#closed ? ", closed" : ""} }`;
  }
}

registerRebuilder("mpts.Connection", (state) => {
  const s = state as ConnectionState;
  const holders = new PipeHolders(s.holders);
  const connection = new Connection(s.incoming, s.outgoing, holders, s.side);
  if (s.outgoing) {
    holders.take(s.side, s.claim);
    received.add(connection);
    closeReceivedAtExit();
  }
  return connection;
});

/**
 * Two connected ends. With `duplex` (default) both can send and receive; otherwise the first can
 * only receive and the second only send, as in Python.
 */
export function Pipe(duplex = true): [Connection, Connection] {
  if (typeof duplex !== "boolean") throw new TypeError(`duplex must be a boolean (got ${typeof duplex})`);
  const aToB = new Queue<unknown>();
  const holders = PipeHolders.create({ words: RawArray("i", HOLDERS_WORDS), lock: new Lock() });
  // the receive-only end of a one-way pipe writes nothing: side 1 is its peer's
  if (!duplex) return [new Connection(aToB, null, holders, 0), new Connection(null, aToB, holders, 1)];
  const bToA = new Queue<unknown>();
  return [new Connection(bToA, aToB, holders, 0), new Connection(aToB, bToA, holders, 1)];
}

function byteSlice(data: ArrayBufferView | ArrayBuffer, offset: number, size: number | undefined): Uint8Array {
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) {
    throw new RangeError(`offset must be an integer within the data, 0..${bytes.length} (got ${offset})`);
  }
  const end = size === undefined ? bytes.length : offset + size;
  if (size !== undefined && (!Number.isInteger(size) || size < 0 || end > bytes.length)) {
    throw new RangeError(`size must be an integer that fits in the data after offset (got ${size})`);
  }
  return bytes.slice(offset, end);
}

function asBytes(value: unknown, maxLength: number | undefined): Buffer {
  if (!(value instanceof Uint8Array)) throw new ProcessError("the message received is not bytes (use recv())");
  if (maxLength !== undefined && value.length > maxLength) {
    throw new ProcessError(`the message is ${value.length} bytes, more than maxLength ${maxLength}`);
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Options of `Listener.listen()` and `Client()`. */
export interface SocketOptions {
  /** Both ends must hold the same key; connections with another key get AuthenticationError. */
  authkey?: string | Uint8Array;
}

const socketNames: OptionNames<SocketOptions> = { authkey: true };
const clientOptionNames = optionNames<SocketOptions>(socketNames);
const listenOptionNames = optionNames<SocketOptions & { backlog?: number }>({ ...socketNames, backlog: true });

/**
 * One end of a socket connection made by `Listener.accept()` or `Client()`: the same methods as a
 * Pipe's `Connection`. Messages are structured-clone values (library objects arrive connected, when
 * both ends are on one machine) and never merge.
 */
export class SocketConnection {
  #reader: MessageReader;
  #closed = false;
  #waiting = 0;

  /** @internal Use `Client()` or `Listener.accept()`. */
  constructor(channel: FramedSocket) {
    this.#reader = new MessageReader(channel);
    // an idle connection does not keep the program alive; one being read from does
    channel.unref();
  }

  async #wait<T>(step: () => Promise<T>): Promise<T> {
    if (this.#waiting++ === 0) this.#reader.channel.ref();
    try {
      return await step();
    } finally {
      if (--this.#waiting === 0) this.#reader.channel.unref();
    }
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends `value`; throws SerializationError at once for a value that cannot travel. */
  send(value: unknown): void {
    this.#check("send");
    const { value: v, changed } = encode(value, "bytes", "value");
    this.#reader.channel.send({ h: changed, v });
  }

  /** Receives the next message; rejects with EOFError once the other end closed and all was read. */
  async recv(): Promise<any> {
    this.#check("recv");
    const { h, v } = (await this.#wait(() => this.#reader.next())) as { h: boolean; v: unknown };
    return h ? decodeOrImport(v) : v;
  }

  /** Sends bytes as one message (a copy of `data[offset, offset + size)`). */
  sendBytes(data: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): void {
    this.send(byteSlice(data, offset, size));
  }

  /** Receives one message sent with `sendBytes`, as a Buffer. Rejects if it exceeds `maxLength`. */
  async recvBytes(maxLength?: number): Promise<Buffer> {
    return asBytes(await this.recv(), maxLength);
  }

  /** Whether a message (or the end of the stream) is waiting, waiting up to `timeout` ms (default 0). */
  poll(timeout = 0): Promise<boolean> {
    this.#check("poll");
    checkTimeout(timeout, "timeout");
    return this.#wait(() => this.#reader.poll(timeout));
  }

  /** Closes the connection after sending what was queued; the other end gets EOFError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    void this.#reader.channel.end();
  }

  /** Closes the connection (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #check(op: string): void {
    if (this.#closed) throw new ProcessError(`cannot ${op} on a closed connection`);
  }

  /** Shows whether it is open or closed. */
  [inspect.custom](): string {
    return `SocketConnection { ${this.#closed ? "closed" : "open"} }`;
  }
}

/**
 * Accepts connections from `Client()`s, like Python's `multiprocessing.connection.Listener`.
 *
 * ```ts
 * await using listener = await Listener.listen(["127.0.0.1", 0], { authkey: "secret" });
 * const conn = await listener.accept();
 * ```
 */
export class Listener {
  #server: Server;
  #address: SocketAddress;
  #authkey: Buffer | undefined;
  #ready: SocketConnection[] = [];
  #failures: unknown[] = [];
  #waiters: { resolve(c: SocketConnection): void; reject(e: unknown): void }[] = [];
  #closed = false;

  private constructor(server: Server, address: SocketAddress, authkey: Buffer | undefined) {
    this.#server = server;
    this.#address = address;
    this.#authkey = authkey;
    // listening alone does not keep the program alive; a pending accept() does
    server.unref();
  }

  /**
   * Listens on `address`: a Unix socket path, or `[host, port]` for TCP (port 0 picks a free port;
   * read it from `listener.address`). Without an address, a fresh private Unix socket.
   */
  static async listen(address?: SocketAddress, options: SocketOptions & { backlog?: number } = {}): Promise<Listener> {
    const where = address === undefined ? localAddress("mpts-listener") : checkAddress(address, "address");
    checkOptionNames(options, listenOptionNames, "Listener.listen()");
    const authkey = checkAuthkey(options.authkey, "options.authkey");
    const backlog = options.backlog ?? 16;
    checkInteger(backlog, "options.backlog", 1);
    let listener: Listener | undefined;
    const pending: import("node:net").Socket[] = [];
    const { server, address: bound } = await listenOn(where, backlog, (socket) =>
      listener ? listener.#incoming(socket) : pending.push(socket),
    );
    listener = new Listener(server, bound, authkey);
    for (const socket of pending) listener.#incoming(socket);
    return listener;
  }

  /** Where this listener listens (with the real port when 0 was asked for). */
  get address(): SocketAddress {
    return this.#address;
  }

  /**
   * The next authenticated connection. A client with the wrong authkey makes this reject with
   * AuthenticationError (that client gets one too); the listener keeps listening.
   */
  accept(): Promise<SocketConnection> {
    if (this.#closed) return Promise.reject(new ClosedError("the listener is closed"));
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failures.length) return Promise.reject(this.#failures.shift());
    this.#server.ref();
    return new Promise<SocketConnection>((resolve, reject) => this.#waiters.push({ resolve, reject })).finally(() => {
      if (this.#waiters.length === 0) this.#server.unref();
    });
  }

  /** Stops listening; connections already accepted stay open. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new ClosedError("the listener was closed"));
  }

  /** Closes the listener (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #incoming(socket: import("node:net").Socket): void {
    acceptChannel(socket, this.#authkey).then(
      (channel) => {
        const connection = new SocketConnection(channel);
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve(connection);
        else if (this.#closed) connection.close();
        else this.#ready.push(connection);
      },
      (error) => {
        const waiter = this.#waiters.shift();
        if (waiter) waiter.reject(error);
        else if (!this.#closed) this.#failures.push(error);
      },
    );
  }

  /** Shows the address it listens on and whether it is closed. */
  [inspect.custom](): string {
    return `Listener { address: ${formatAddress(this.#address)}${this.#closed ? ", closed" : ""} }`;
  }
}

/**
 * Connects to a `Listener` at `address`, like Python's `multiprocessing.connection.Client`.
 * Rejects with AuthenticationError when the keys differ, and with a ProcessError when nothing
 * listens there.
 */
export async function Client(address: SocketAddress, options: SocketOptions = {}): Promise<SocketConnection> {
  const where = checkAddress(address, "address");
  checkOptionNames(options, clientOptionNames, "Client()");
  const authkey = checkAuthkey(options.authkey, "options.authkey");
  return new SocketConnection(await dialChannel(where, authkey));
}
