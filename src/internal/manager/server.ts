/**
 * The server behind a `Manager`: it holds objects and runs their methods for clients.
 *
 *   client ──auth──► hello {client} ──► create {id, typeid, args} / call {id, method, args} ──► reply
 *
 * A client names the objects it creates (`<client>.<n>`), so `manager.dict()` returns its proxy at
 * once and the create travels ahead of any call on the same connection. A proxy handed to another
 * process may be used before its create has arrived: such a call waits for it, or fails if the
 * creating client disconnects without making it. Every call on a connection runs as it arrives;
 * blocking ones (a queue's get, a lock's acquire) park without holding up the others.
 */
import type { Server, Socket } from "node:net";
import { ProcessError, RemoteError } from "../../errors.js";
import { type CodeRef, resolveCode } from "../reduction.js";
import { decode, encode, encodeError, importsFor } from "../wire/codec.js";
import type { FramedSocket } from "../wire/framing.js";
import { builtinTypes } from "./builtins.js";
import { type CallContext, type ClientAware, withCallContext } from "./referents.js";
import { type SocketAddress, acceptChannel, listenOn } from "../wire/sockets.js";
import { type RunningCall, ServedCalls } from "../wire/rpc.js";
import { WaitList } from "../waitlist.js";

/** One typeid the server can make. */
export interface Registration {
  typeid: string;
  /** The callable itself, when the server runs in the registering process. */
  local?: Function;
  /** A `Manager` type made by the library itself. */
  builtin?: string;
  /** A user's function or class, called (or constructed) with the create arguments. */
  callable?: CodeRef;
  /** Methods clients may call; default: every public method. */
  exposed?: string[];
  /** Methods whose result is kept on the server and returned as a proxy of this typeid. */
  methodToTypeid?: Record<string, string>;
  /** Which proxy class clients build for it. */
  proxy: string;
}

/** What the server is started with. */
export interface ServerConfig {
  address: SocketAddress;
  authkey: Uint8Array | undefined;
  registry: Registration[];
}

/** How a proxy names its object; sent along with every proxy. */
export interface Token {
  typeid: string;
  id: string;
  address: SocketAddress;
  authkey: string | null;
  proxy: string;
}

/** Requests and replies on the wire; `a`/`v` are encoded values, `h` says whether to decode them. */
export type Request = WorkRequest | { q: number; k: "shutdown" } | { c: number };
/** A request that runs on an object: its creation, or a call of one of its methods. */
type WorkRequest =
  | { q: number; k: "create"; id: string; typeid: string; a: unknown; h: boolean }
  | { q: number; k: "call"; id: string; m: string; a: unknown; h: boolean };
export type Reply = { q: number; ok: true; v?: unknown; h: boolean } | { q: number; ok: false; e: unknown };

interface Held {
  obj: Record<string, unknown>;
  typeid: string;
  exposed: Set<string>;
  methodToTypeid: Record<string, string> | undefined;
}

interface Client {
  open: boolean;
  created: number;
  arrived: WaitList;
}

const exposedCache = new WeakMap<object, Set<string>>();

/** Every public method of `obj`: names not starting with "_", up its prototype chain. */
function publicMethods(obj: object): Set<string> {
  const proto = Object.getPrototypeOf(obj);
  const cached = proto && exposedCache.get(proto);
  if (cached && Object.keys(obj).every((k) => typeof (obj as Record<string, unknown>)[k] !== "function")) return cached;
  const names = new Set<string>();
  for (let o: object | null = obj; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name.startsWith("_") || name === "constructor") continue;
      const desc = Object.getOwnPropertyDescriptor(o, name);
      if (desc && typeof desc.value === "function") names.add(name);
    }
  }
  if (proto && proto !== Object.prototype) exposedCache.set(proto, names);
  return names;
}

function isClass(fn: Function): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** A running manager server. */
export class ManagerServer {
  readonly address: SocketAddress;
  /** Resolves when the server has shut down. */
  readonly done: Promise<void>;
  #server: Server;
  #authkey: Buffer | undefined;
  #types = new Map<string, Registration & { make?: Function }>();
  #objects = new Map<string, Held>();
  #failed = new Map<string, unknown>();
  #clients = new Map<number, Client>();
  #sockets = new Set<FramedSocket>();
  #nextClient = 1;
  #nextServerId = 1;
  #finish!: () => void;
  #closing = false;

  private constructor(server: Server, address: SocketAddress, authkey: Buffer | undefined) {
    this.#server = server;
    this.address = address;
    this.#authkey = authkey;
    this.done = new Promise((resolve) => (this.#finish = resolve));
  }

  /**
   * Resolves every registered callable, then listens. Proxies that arrive in arguments are rebuilt
   * by the library's classes, so the process has the library loaded: a manager's process and the
   * fallback agent thread load it from their entries (entries/bootstrap.ts, entries/agent-server.ts).
   */
  static async start(config: ServerConfig): Promise<ManagerServer> {
    const types = new Map<string, Registration & { make?: Function }>();
    for (const entry of config.registry) {
      let make: Function | undefined = entry.local;
      if (entry.builtin) make = builtinTypes[entry.builtin];
      else if (entry.callable) make = await resolveCode(entry.callable, { importing() {} });
      types.set(entry.typeid, { ...entry, make });
    }
    let self: ManagerServer | undefined;
    const early: Socket[] = [];
    const { server, address } = await listenOn(config.address, 128, (socket) =>
      self ? self.#accept(socket) : early.push(socket),
    );
    const authkey = config.authkey ? Buffer.from(config.authkey) : undefined;
    self = new ManagerServer(server, address, authkey);
    self.#types = types;
    for (const socket of early) self.#accept(socket);
    return self;
  }

  /** A caller number for calls made from within the server's own thread (`createHere`, `callHere`). */
  reserveCaller(): number {
    const caller = this.#nextClient++;
    this.#clients.set(caller, { open: true, created: 0, arrived: new WaitList() });
    return caller;
  }

  /** Creates an object from within the server's thread, as `caller`; resolves with its token. */
  async createHere(caller: number, typeid: string, args: unknown[]): Promise<Token> {
    const client = this.#clients.get(caller)!;
    const id = `${caller}.${client.created + 1}`;
    await this.#create(caller, client, id, typeid, args);
    const proxy = this.#types.get(typeid)?.proxy ?? "auto";
    return { typeid, id, address: this.address, authkey: this.#authkey?.toString("hex") ?? null, proxy };
  }

  /** Whether `token` names an object of this server. */
  holds(token: Token): boolean {
    return this.#owns(token) && this.#objects.has(token.id);
  }

  /** Calls a method of an object held here from within the server's thread, as `caller`. */
  callHere(caller: number, token: Token, method: string, args: unknown[], signal: AbortSignal): unknown {
    const held = this.#objects.get(token.id)!;
    return this.#invoke(held, method, { a: args, h: false }, { caller, signal });
  }

  /** Stops listening, drops every connection (their pending calls fail), and resolves `done`. */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#server.close();
    for (const socket of this.#sockets) void socket.end();
    this.#finish();
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    acceptChannel(socket, this.#authkey).then(
      (channel) => this.#serve(channel),
      () => {}, // the client was told; a wrong key gets nothing else
    );
  }

  #serve(channel: FramedSocket): void {
    const clientId = this.#nextClient++;
    const client: Client = { open: true, created: 0, arrived: new WaitList() };
    this.#clients.set(clientId, client);
    this.#sockets.add(channel);
    const calls = new ServedCalls();
    const onClose = () => {
      client.open = false;
      client.arrived.wakeAll();
      this.#sockets.delete(channel);
      calls.closeAll();
      for (const held of this.#objects.values()) (held.obj as unknown as Partial<ClientAware>).clientGone?.(clientId);
    };
    const reply = (message: Reply) => channel.send(message);
    const onMessage = (message: unknown) => {
      const request = message as Request;
      if ("c" in request) {
        calls.cancel(request.c);
        return;
      }
      const { q } = request;
      if (request.k === "shutdown") {
        reply({ q, ok: true, h: false });
        void channel.flush().then(() => this.close());
        return;
      }
      // no named closure per request: the bundle names each one at run time (keepNames)
      calls.run(
        q,
        (running) => this.#run(clientId, client, request, running),
        (ok, v) => reply(replyFor(q, ok, v)),
      );
    };
    channel.listen(onMessage, onClose);
    channel.send({ t: "hello", client: clientId, pid: process.pid });
  }

  /** Runs a create or call request, once what its arguments name is imported. */
  #run(clientId: number, client: Client, request: WorkRequest, running: RunningCall): unknown {
    // arguments naming an exported class or function the server has not imported yet wait for it
    const imports = request.h ? importsFor(request.a) : undefined;
    if (imports) return imports.then(() => this.#perform(clientId, client, request, running));
    return this.#perform(clientId, client, request, running);
  }

  #perform(clientId: number, client: Client, request: WorkRequest, running: RunningCall): unknown {
    if (request.k === "create") return this.#create(clientId, client, request.id, request.typeid, this.#args(request));
    const context = new RequestContext(clientId, running);
    return this.#call(request.id, request.m, request, context);
  }

  #args(request: { a: unknown; h: boolean }): unknown[] {
    return (request.h ? decode(request.a) : request.a) as unknown[];
  }

  /** Makes an object under the id the client chose; remembers a failure for calls that follow. */
  #create(clientId: number, client: Client, id: string, typeid: string, args: unknown[]): unknown {
    const n = Number(id.slice(id.indexOf(".") + 1));
    const done = () => {
      if (id.startsWith(`${clientId}.`) && n > client.created) client.created = n;
      client.arrived.wakeAll();
    };
    try {
      const made = this.#make(
        typeid,
        args.map((arg) => this.#local(arg)),
      );
      if (made instanceof Promise) {
        return made.then(
          (obj) => {
            this.#hold(id, typeid, obj);
            done();
            return [...this.#objects.get(id)!.exposed];
          },
          (error) => {
            this.#failed.set(id, error);
            done();
            throw error;
          },
        );
      }
      this.#hold(id, typeid, made);
      done();
      return [...this.#objects.get(id)!.exposed];
    } catch (error) {
      this.#failed.set(id, error);
      done();
      throw error;
    }
  }

  #make(typeid: string, args: unknown[]): unknown {
    const type = this.#types.get(typeid);
    if (!type) {
      throw new ProcessError(
        `unknown typeid ${JSON.stringify(typeid)}: this manager server has ${[...this.#types.keys()].join(", ") || "none"}`,
      );
    }
    if (!type.make) {
      throw new ProcessError(
        `typeid ${JSON.stringify(typeid)} has no callable on this server, so it cannot be created`,
      );
    }
    return isClass(type.make) ? Reflect.construct(type.make, args) : type.make(...args);
  }

  #hold(id: string, typeid: string, obj: unknown): void {
    if (obj === null || (typeof obj !== "object" && typeof obj !== "function")) {
      throw new TypeError(`the callable for typeid ${JSON.stringify(typeid)} returned ${String(obj)}, not an object`);
    }
    const type = this.#types.get(typeid);
    const exposed = type?.exposed ? new Set(type.exposed) : publicMethods(obj);
    this.#objects.set(id, {
      obj: obj as Record<string, unknown>,
      typeid,
      exposed,
      methodToTypeid: type?.methodToTypeid,
    });
  }

  /**
   * A creation argument that is a proxy of an object held here becomes the object itself (a
   * Condition's lock). Method arguments stay proxies (see #invoke).
   */
  #local(arg: unknown): unknown {
    const token = (arg as { _token?: Token } | null)?._token;
    if (!token || typeof token !== "object" || !this.#owns(token)) return arg;
    return this.#objects.get(token.id)?.obj ?? arg;
  }

  #owns(token: Token): boolean {
    return JSON.stringify(token.address) === JSON.stringify(this.address);
  }

  async #find(id: string): Promise<Held> {
    for (;;) {
      const held = this.#objects.get(id);
      if (held) return held;
      if (this.#failed.has(id)) throw this.#failed.get(id);
      const dot = id.indexOf(".");
      const client = this.#clients.get(Number(id.slice(0, dot)));
      const n = Number(id.slice(dot + 1));
      if (!client?.open || n <= client.created) {
        throw new ProcessError(`the manager holds no object ${id} (it was never created, or the manager restarted)`);
      }
      await client.arrived.wait(Number.POSITIVE_INFINITY);
    }
  }

  #call(id: string, method: string, request: { a: unknown; h: boolean }, context: CallContext): unknown {
    const held = this.#objects.get(id);
    if (!held) return this.#find(id).then((found) => this.#invoke(found, method, request, context));
    return this.#invoke(held, method, request, context);
  }

  #invoke(held: Held, method: string, request: { a: unknown; h: boolean }, context: CallContext): unknown {
    if (!held.exposed.has(method)) {
      throw new RemoteError(
        `method ${JSON.stringify(method)} of ${held.typeid} is not exposed (exposed: ${[...held.exposed].join(", ")})`,
      );
    }
    const fn = held.obj[method];
    if (typeof fn !== "function") throw new RemoteError(`${held.typeid}.${method} is not a method`);
    // a proxy passed to a method stays a proxy: what the method stores (a list appended to a list,
    // a queue put in a queue, a list in itself) is read back later as a live proxy, as in Python
    const args = this.#args(request);
    const result = withCallContext(context, () => fn.apply(held.obj, args));
    const typeid = held.methodToTypeid?.[method];
    if (!typeid) return result;
    const wrap = (value: unknown): Token => {
      const newId = `0.${this.#nextServerId++}`;
      this.#hold(newId, typeid, value);
      const type = this.#types.get(typeid);
      return {
        typeid,
        id: newId,
        address: this.address,
        authkey: null,
        proxy: type?.proxy ?? "auto",
        [resultToken]: true,
      } as Token;
    };
    return result instanceof Promise ? result.then(wrap) : wrap(result);
  }
}

/** What a method reads through `callContext()`: its caller, and a signal made on first read. */
class RequestContext implements CallContext {
  constructor(
    readonly caller: number,
    readonly running: RunningCall,
  ) {}

  get signal(): AbortSignal {
    return this.running.signal;
  }
}

/** The reply to request `q` that ended with `ok` and `value` (its result, or the error it threw). */
function replyFor(q: number, ok: boolean, value: unknown): Reply {
  let encoded: ReturnType<typeof encode> | undefined;
  try {
    if (ok) encoded = encode(value, "bytes", "result");
  } catch (error) {
    value = error;
  }
  if (!encoded) return { q, ok: false, e: encodeError(value, "bytes") };
  // an undefined value is left out, so that the reply stays plain data (see framing.ts)
  if (encoded.value === undefined) return { q, ok: true, h: false };
  return { q, ok: true, v: encoded.value, h: encoded.changed };
}

/** Marks a reply that is a token for a new proxy (the client fills in its own authkey). */
export const resultToken = "\u0000mptsToken";

/** Where the manager's process reports that it is up: the child end of a Pipe. */
export interface ReadyChannel {
  send(message: unknown): void;
  close(): void;
}

/**
 * Runs a manager server until a client asks it to shut down: the body of the manager's process.
 * Reports `{ address }` (or the error that stopped it) on `ready`.
 */
export async function runManagerServer(config: ServerConfig, ready: ReadyChannel): Promise<void> {
  let server: ManagerServer;
  try {
    server = await ManagerServer.start(config);
  } catch (error) {
    ready.send({ ok: false, error });
    ready.close();
    return;
  }
  ready.send({ ok: true, address: server.address, pid: process.pid });
  ready.close();
  await server.done;
}
