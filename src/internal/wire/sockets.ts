/**
 * Authenticated message sockets: what `Listener`, `Client` and managers talk over.
 *
 *   listen(address) ─► accept ─► deliver challenge ─► answer challenge ─► messages
 *   dial(address)   ─► connect ─► answer challenge ─► deliver challenge ─► messages
 *
 * As in Python, both ends prove they hold the authkey without sending it: each sends a random
 * nonce and expects back HMAC-SHA256(authkey, nonce). A wrong key gets AuthenticationError on both
 * sides, and the connection carries no data. Addresses are a Unix socket path (a leading "\0"
 * names a Linux abstract socket, which leaves no file behind) or a `[host, port]` pair for TCP.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { type Server, type Socket, createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthenticationError, EOFError, ProcessError } from "../../errors.js";
import { FramedSocket } from "./framing.js";

/** Where a listener listens: a Unix socket path, or `[host, port]` for TCP (port 0 picks a free port). */
export type SocketAddress = string | readonly [host: string, port: number];

/** Checks and normalises an address given by a user. */
export function checkAddress(value: unknown, name: string): SocketAddress {
  if (typeof value === "string" && value.length > 0) return value;
  if (Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && Number.isInteger(value[1])) {
    if (value[1] < 0 || value[1] > 65535) throw new RangeError(`${name} port must be 0..65535 (got ${value[1]})`);
    return [value[0], value[1]] as const;
  }
  if (value && typeof value === "object" && "port" in value) {
    const { host = "127.0.0.1", port } = value as { host?: unknown; port: unknown };
    return checkAddress([host, port], name);
  }
  throw new TypeError(
    `${name} must be a Unix socket path or [host, port] such as ["127.0.0.1", 0] (got ${JSON.stringify(value)})`,
  );
}

/** A fresh address private to this machine: an abstract socket on Linux, a temp file elsewhere. */
export function localAddress(prefix: string): string {
  const name = `${prefix}-${process.pid}-${randomBytes(6).toString("hex")}`;
  return process.platform === "linux" ? `\0${name}` : join(tmpdir(), `${name}.sock`);
}

/** Formats an address for messages. */
export function formatAddress(address: SocketAddress): string {
  if (typeof address !== "string") return `${address[0]}:${address[1]}`;
  return address.startsWith("\0") ? `@${address.slice(1)}` : address;
}

/** Checks an authkey and turns it into bytes; undefined means "no authentication". */
export function checkAuthkey(value: unknown, name: string): Buffer | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof Uint8Array) return Buffer.from(value);
  throw new TypeError(`${name} must be a string or bytes (got ${typeof value})`);
}

/** Reads a socket's messages one at a time, for handshakes and simple request/reply use. */
export class MessageReader {
  #queue: unknown[] = [];
  #waiters: { resolve(v: unknown): void; reject(e: unknown): void }[] = [];
  #ended: Error | undefined;

  constructor(readonly channel: FramedSocket) {
    channel.listen(
      (message) => {
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve(message);
        else this.#queue.push(message);
      },
      (error) => {
        this.#ended = new EOFError("the connection was closed by the other end", { cause: error });
        for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#ended);
      },
    );
  }

  /** Messages received and not yet read. */
  get buffered(): number {
    return this.#queue.length;
  }

  /** True once the other end has closed and every message was read. */
  get ended(): boolean {
    return this.#ended !== undefined && this.#queue.length === 0;
  }

  /** The next message; rejects with EOFError when the connection ends first. */
  next(): Promise<unknown> {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Resolves true when a message (or the end) is waiting, false after `timeout` ms. */
  async poll(timeout: number | undefined): Promise<boolean> {
    if (this.#queue.length || this.#ended) return true;
    if (timeout !== undefined && timeout <= 0) return false;
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        resolve: (message: unknown) => {
          clearTimeout(timer);
          this.#queue.unshift(message);
          resolve(true);
        },
        reject: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.#waiters.push(waiter);
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          resolve(false);
        }, timeout);
      }
    });
  }

  /**
   * Hands the channel to the caller's `listen()` (after a handshake), with the messages read past
   * the handshake's and the end of the stream, if it came, still to be delivered.
   */
  release(): FramedSocket {
    this.channel.hold(this.#queue.splice(0));
    return this.channel;
  }
}

const NONCE = 32;
const HANDSHAKE_MS = 20_000;

function digest(authkey: Buffer, nonce: Uint8Array): Buffer {
  return createHmac("sha256", authkey).update(nonce).digest();
}

async function deliverChallenge(reader: MessageReader, authkey: Buffer): Promise<void> {
  const nonce = randomBytes(NONCE);
  reader.channel.send({ t: "challenge", n: nonce });
  const reply = (await reader.next()) as { t?: string; d?: Uint8Array };
  const expected = digest(authkey, nonce);
  const ok =
    reply?.t === "response" &&
    reply.d instanceof Uint8Array &&
    reply.d.length === expected.length &&
    timingSafeEqual(reply.d, expected);
  reader.channel.send({ t: ok ? "welcome" : "failure" });
  if (!ok) throw new AuthenticationError("digest received was wrong: the other end holds a different authkey");
}

async function answerChallenge(reader: MessageReader, authkey: Buffer): Promise<void> {
  const challenge = (await reader.next()) as { t?: string; n?: Uint8Array };
  if (challenge?.t !== "challenge" || !(challenge.n instanceof Uint8Array)) {
    throw new AuthenticationError("the other end did not send an authentication challenge (does it use an authkey?)");
  }
  reader.channel.send({ t: "response", d: digest(authkey, challenge.n) });
  const verdict = (await reader.next()) as { t?: string };
  if (verdict?.t !== "welcome") {
    throw new AuthenticationError("the other end refused our authkey: both ends must use the same authkey");
  }
}

/** Runs a handshake with a deadline; on any failure the socket is destroyed. */
async function handshake(reader: MessageReader, steps: () => Promise<void>): Promise<FramedSocket> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AuthenticationError(`the authentication handshake did not finish in ${HANDSHAKE_MS} ms`)),
      HANDSHAKE_MS,
    );
  });
  try {
    await Promise.race([steps(), deadline]);
    return reader.release();
  } catch (error) {
    await reader.channel.flush();
    reader.channel.destroy();
    if (error instanceof EOFError) {
      throw new AuthenticationError("the connection closed during authentication (wrong authkey?)", { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Server side of a new connection: authenticates it (when there is a key) and returns the channel. */
export function acceptChannel(socket: Socket, authkey: Buffer | undefined): Promise<FramedSocket> {
  const reader = new MessageReader(new FramedSocket(socket));
  if (!authkey) return Promise.resolve(reader.release());
  return handshake(reader, async () => {
    await deliverChallenge(reader, authkey);
    await answerChallenge(reader, authkey);
  });
}

/** Connects to `address`, authenticates (when there is a key) and returns the channel. */
export async function dialChannel(address: SocketAddress, authkey: Buffer | undefined): Promise<FramedSocket> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = typeof address === "string" ? netConnect(address) : netConnect({ host: address[0], port: address[1] });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", (error: NodeJS.ErrnoException) => {
      const hint =
        error.code === "ECONNREFUSED" || error.code === "ENOENT"
          ? " (nothing listens there: is the listener or manager running?)"
          : "";
      reject(
        new ProcessError(`cannot connect to ${formatAddress(address)}: ${error.message}${hint}`, { cause: error }),
      );
    });
  });
  const reader = new MessageReader(new FramedSocket(socket));
  if (!authkey) return reader.release();
  return handshake(reader, async () => {
    await answerChallenge(reader, authkey);
    await deliverChallenge(reader, authkey);
  });
}

/** Starts listening; resolves with the server and the address it got (the real port for port 0). */
export function listenOn(
  address: SocketAddress,
  backlog: number,
  onSocket: (socket: Socket) => void,
): Promise<{ server: Server; address: SocketAddress }> {
  return new Promise((resolve, reject) => {
    const server = createServer(onSocket);
    server.once("error", (error) =>
      reject(new ProcessError(`cannot listen on ${formatAddress(address)}: ${error.message}`, { cause: error })),
    );
    const ready = () => {
      const bound = server.address();
      resolve({
        server,
        address:
          typeof address === "string" || bound === null || typeof bound === "string"
            ? address
            : [address[0], bound.port],
      });
    };
    if (typeof address === "string") server.listen({ path: address, backlog }, ready);
    else server.listen({ host: address[0], port: address[1], backlog }, ready);
  });
}
