/**
 * The connection from this process to one manager server, shared by every proxy of that manager:
 *
 *   proxy._callMethod() ─► ManagerClient.request() ─► socket ─► server ─► reply ─► the caller's promise
 *
 * It dials once and authenticates; replies settle their calls by request number. When the server
 * goes away, calls in flight reject with EOFError and later ones with a ProcessError.
 */
import { AuthenticationError, ClosedError, EOFError, ProcessError } from "../../errors.js";
import { PendingCalls } from "../wire/calls.js";
import { decodeOrImport } from "../wire/codec.js";
import type { FramedSocket } from "../wire/framing.js";
import { type Reply, type Request, type Token, resultToken } from "./server.js";
import { runtime } from "../runtime.js";
import { MessageReader, type SocketAddress, dialChannel, formatAddress } from "../wire/sockets.js";

/** The managers this process shut down (by `clientKey`): their proxies refuse calls at once. */
export const shutDown = new Set<string>();

/** Which manager, as `shutDown` and the connection cache name it. */
export function clientKey(address: SocketAddress, authkey: string | null): string {
  return `${JSON.stringify(address)}|${authkey ?? ""}`;
}

/** One connection per manager per process, shared by every proxy of that manager. */
export class ManagerClient {
  static #all = new Map<string, ManagerClient>();
  static #inFlight = new Set<Promise<unknown>>();
  static #exitHook = false;

  /**
   * Turns a reply that is a token for a new proxy into that proxy (set by the proxies' module,
   * which imports this one).
   */
  static adopt: (token: Token, authkey: string | null) => unknown = (token) => token;

  /** The connection to the manager at `address` (made on first use); `key` is `clientKey()`'s. */
  static for(address: SocketAddress, authkey: string | null, key = clientKey(address, authkey)): ManagerClient {
    let client = ManagerClient.#all.get(key);
    if (!client) {
      client = new ManagerClient(key, address, authkey);
      ManagerClient.#all.set(key, client);
    }
    return client;
  }

  /** Waits, before a child exits, for calls it did not await (a `set()` or `append()`). */
  static track(call: Promise<unknown>): void {
    ManagerClient.#inFlight.add(call);
    const forget = () => ManagerClient.#inFlight.delete(call);
    call.then(forget, forget);
    ManagerClient.#hookExit();
  }

  static #hookExit(): void {
    if (ManagerClient.#exitHook) return;
    ManagerClient.#exitHook = true;
    runtime.beforeExit.push(async () => {
      for (;;) {
        if (ManagerClient.#inFlight.size) await Promise.allSettled([...ManagerClient.#inFlight]);
        else if (ManagerClient.#tracking.size) await Promise.all([...ManagerClient.#tracking].map((c) => c.#drained()));
        else return;
      }
    });
  }

  /** Clients that made tracked calls. */
  static #tracking = new Set<ManagerClient>();

  async #drained(): Promise<void> {
    await this.#calls.drained();
    ManagerClient.#tracking.delete(this);
  }

  readonly ready: Promise<void>;
  /** The number the server gave this connection; objects this process creates are named after it. */
  clientId = 0;
  #key: string;
  #address: SocketAddress;
  #authkey: string | null;
  #channel: FramedSocket | undefined;
  #calls = new PendingCalls({
    cancel: (q) => this.#channel?.send({ c: q }),
    busy: (busy) => (busy ? this.#channel?.ref() : this.#channel?.unref()),
  });
  #nextObject = 0;
  #lost: Error | undefined;
  /** How many managers of this process (started or connected) use this connection. */
  #managers = 0;

  private constructor(key: string, address: SocketAddress, authkey: string | null) {
    this.#key = key;
    this.#address = address;
    this.#authkey = authkey;
    this.ready = this.#open(authkey === null ? undefined : Buffer.from(authkey, "hex"));
    this.ready.catch((error) => this.#close(error));
  }

  async #open(authkey: Buffer | undefined): Promise<void> {
    const channel = await dialChannel(this.#address, authkey);
    const reader = new MessageReader(channel);
    const hello = (await reader.next()) as { t?: string; client?: number };
    if (hello?.t === "challenge") {
      channel.destroy();
      throw new AuthenticationError("the manager requires an authkey: pass the same authkey as the server's");
    }
    if (hello?.t !== "hello") throw new ProcessError(`${formatAddress(this.#address)} is not a manager server`);
    reader.release();
    this.clientId = hello.client!;
    channel.listen(
      (message) => this.#reply(message as Reply),
      (error) =>
        this.#close(
          new EOFError(
            `the connection to the manager at ${formatAddress(this.#address)} was lost: the manager was shut down or its process died`,
            { cause: error },
          ),
        ),
    );
    if (this.#calls.size === 0) channel.unref();
    this.#channel = channel;
  }

  /** A fresh id for an object this process creates (the connection must be ready). */
  newId(): string {
    return `${this.clientId}.${++this.#nextObject}`;
  }

  /**
   * Sends one request; resolves with the decoded reply. A `tracked` call is one a child waits for
   * before it exits (a `set()` or `append()` it did not await).
   */
  request(body: Omit<Request & { q: number }, "q">, signal?: AbortSignal, tracked = false): Promise<unknown> {
    if (this.#lost) return Promise.reject(this.#lost);
    if (tracked && !ManagerClient.#tracking.has(this)) {
      ManagerClient.#tracking.add(this);
      ManagerClient.#hookExit();
    }
    return this.#calls.start((q) => this.#send({ q, ...body } as Request & { q: number }), signal, tracked);
  }

  #send(message: Request & { q: number }): void {
    if (this.#channel) {
      this.#channel.send(message);
      return;
    }
    this.ready.then(
      () => {
        if (!this.#calls.has(message.q)) return;
        this.#channel!.ref();
        this.#channel!.send(message);
      },
      () => {},
    );
  }

  /** A manager of this process uses the connection (until it calls `disconnect()`). */
  join(): void {
    this.#managers++;
  }

  /**
   * A manager of this process is done with the connection: the last one ends it (the server keeps
   * running). Another manager of this process connected to the same server, a started one that
   * must still send its shutdown for instance, keeps it open.
   */
  disconnect(): void {
    if (--this.#managers > 0) return;
    this.#close(new ClosedError("this process closed its connection to the manager"));
    this.#channel?.destroy();
  }

  #reply(reply: Reply): void {
    if (!reply.ok) {
      this.#calls.settle(reply.q, false, decodeOrImport(reply.e));
      return;
    }
    try {
      // a Promise (while a module is imported) is adopted by the caller's promise
      this.#calls.settle(reply.q, true, this.#adopt(reply.h ? decodeOrImport(reply.v) : reply.v));
    } catch (error) {
      this.#calls.settle(reply.q, false, error);
    }
  }

  /** A method's result that is an object kept on the server comes back as a proxy of it. */
  #adopt(value: unknown): unknown {
    if (value instanceof Promise) return value.then((settled) => this.#adopt(settled));
    return isResultToken(value) ? ManagerClient.adopt(value, this.#authkey) : value;
  }

  #close(error: Error): void {
    if (this.#lost) return;
    const gone = shutDown.has(this.#key);
    this.#lost = gone ? new ClosedError("the manager that owns this object was shut down", { cause: error }) : error;
    if (ManagerClient.#all.get(this.#key) === this) ManagerClient.#all.delete(this.#key);
    this.#calls.rejectAll(this.#lost);
  }
}

/** A reply that names an object the server kept for a method's result (see `methodToTypeid`). */
function isResultToken(value: unknown): value is Token {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[resultToken] === true;
}
