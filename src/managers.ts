/**
 * Managers: objects held by a server process, used by any process through proxies, like Python's
 * `multiprocessing.managers`.
 *
 *   Manager.start() ──► server process (or thread) listening on a private socket
 *   manager.dict()  ──► DictProxy ──(one message per method call)──► the server's Map
 *   proxy passed to a Process or a pool task ──► arrives as a proxy of the same object
 *
 * `BaseManager` serves types registered with `register()` and can listen on TCP for other
 * machines; connections authenticate with an HMAC challenge on the authkey. Every proxy method
 * returns a promise; when the server goes away, calls in flight reject with EOFError and later ones
 * with a ProcessError: nothing waits forever on a dead manager.
 *
 * This file holds the managers; the proxies are in proxies.ts, and the connection they share in
 * internal/manager/client.ts.
 */
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { Pipe } from "./connection.js";
import { ClosedError, ProcessError } from "./errors.js";
import { encode } from "./internal/wire/codec.js";
import { ManagerClient, clientKey, shutDown } from "./internal/manager/client.js";
import {
  ManagerServer,
  type Registration,
  type ServerConfig,
  type Token,
  runManagerServer,
} from "./internal/manager/server.js";
import { resolveMethod } from "./backends/registry.js";
import { managerServerModule } from "./internal/paths.js";
import type { StartMethod } from "./internal/runtime.js";
import {
  type SocketAddress,
  checkAddress,
  checkAuthkey,
  formatAddress,
  localAddress,
} from "./internal/wire/sockets.js";
import { checkOptionNames, optionNames } from "./internal/validate.js";
import { Process } from "./process.js";
import { codeRef, libraryCodeRef } from "./internal/reduction.js";
import type { Scalar, Typecode } from "./sharedctypes.js";

export type { SocketAddress } from "./internal/wire/sockets.js";
import {
  type ArrayProxy,
  type AutoProxy,
  type BarrierProxy,
  type BaseProxy,
  type ConditionProxy,
  type DictProxy,
  type EventProxy,
  type JoinableQueueProxy,
  type ListProxy,
  type LockProxy,
  type NamespaceProxy,
  type QueueProxy,
  type RLockProxy,
  type SemaphoreProxy,
  type ValueProxy,
  makeProxy,
} from "./proxies.js";

/** Options of `register()`. */
export interface RegisterOptions {
  /** The methods clients may call; default: every public method (names not starting with "_"). */
  exposed?: readonly string[];
  /** Methods whose result stays on the server and comes back as a proxy of the given typeid. */
  methodToTypeid?: Record<string, string>;
}

const registerOptionNames = optionNames<RegisterOptions>({ exposed: true, methodToTypeid: true });

/** Options of `new BaseManager(...)` and `Manager.start(...)`. */
export interface ManagerOptions {
  /**
   * Where the server listens: a Unix socket path, or `[host, port]` for TCP (port 0 picks a free
   * port). Default: a private Unix socket.
   */
  address?:
    | SocketAddress
    | {
        /** The interface to listen on (default `127.0.0.1`). */
        host?: string;
        /** The TCP port; 0 picks a free one. */
        port: number;
      };
  /** The shared secret clients must prove they hold. Default: 32 random bytes (see `authkey`). */
  authkey?: string | Uint8Array;
  /** Where the server runs: a child process (`"spawn"`, default) or a worker thread (`"thread"`). */
  context?:
    | StartMethod
    | {
        /** The start method, as a {@link Context} carries it. */
        readonly startMethod: StartMethod;
      };
}

const managerOptionNames = optionNames<ManagerOptions>({ address: true, authkey: true, context: true });

interface Entry {
  typeid: string;
  callable?: Function;
  builtin?: string;
  exposed?: readonly string[];
  methodToTypeid?: Record<string, string>;
  proxy: string;
}

const registries = new WeakMap<Function, Map<string, Entry>>();

function registryOf(cls: Function): Map<string, Entry> {
  const chain: Function[] = [];
  for (let c: Function | null = cls; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) chain.unshift(c);
  const merged = new Map<string, Entry>();
  for (const c of chain) for (const [k, v] of registries.get(c) ?? []) merged.set(k, v);
  return merged;
}

function checkRegistration(typeid: unknown, callable: unknown, options: RegisterOptions): void {
  if (typeof typeid !== "string" || typeid.length === 0) {
    throw new TypeError(`typeid must be a non-empty string (got ${JSON.stringify(typeid)})`);
  }
  if (callable !== undefined && typeof callable !== "function") {
    throw new TypeError(`the callable for typeid "${typeid}" must be a function or class (got ${typeof callable})`);
  }
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  checkOptionNames(options, registerOptionNames, "register()");
  if (
    options.exposed !== undefined &&
    (!Array.isArray(options.exposed) || options.exposed.some((m) => typeof m !== "string"))
  ) {
    throw new TypeError(`options.exposed must be an array of method names (got ${JSON.stringify(options.exposed)})`);
  }
}

type State = "initial" | "starting" | "started" | "connected" | "shutdown";

/** A server's handle when it runs in this very process (`getServer()`). */
export interface ManagerServerHandle {
  /** Where it listens. */
  readonly address: SocketAddress;
  /** Resolves when a client shuts the server down (or `close()` is called). */
  serveForever(): Promise<void>;
  /** Stops the server; connected proxies' calls fail. */
  close(): void;
}

/**
 * A manager of registered types, like Python's `BaseManager`. Register types on a subclass, then
 * `start()` a server or `connect()` to one:
 *
 * ```ts
 * class MathsManager extends BaseManager {}
 * MathsManager.register("Maths", MathsClass);
 * await using manager = await new MathsManager({ address: ["127.0.0.1", 0], authkey: "secret" }).start();
 * const maths = await manager.create<MathsClass>("Maths");
 * await maths.add(1, 2);
 * ```
 */
export class BaseManager {
  /**
   * Registers `typeid` for every manager of this class (and its subclasses): `create(typeid, ...args)`
   * calls `callable` in the server (with `new` for a class) and returns a proxy of the result. A
   * client that only connects may register a typeid without a callable.
   */
  static register(typeid: string, callable?: Function, options: RegisterOptions = {}): void {
    checkRegistration(typeid, callable, options);
    // `this` is the class register() was called on: a subclass gets its own registry
    // biome-ignore lint/complexity/noThisInStatic: per-subclass registries
    let own = registries.get(this);
    // biome-ignore lint/complexity/noThisInStatic: per-subclass registries
    if (!own) registries.set(this, (own = new Map()));
    own.set(typeid, {
      typeid,
      callable,
      exposed: options.exposed,
      methodToTypeid: options.methodToTypeid,
      proxy: "auto",
    });
  }

  #registry: Map<string, Entry>;
  #address: SocketAddress | undefined;
  #authkey: Buffer;
  #method: StartMethod;
  #state: State = "initial";
  #process: Process | undefined;
  #client: ManagerClient | undefined;

  constructor(options: ManagerOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`manager options must be an object such as { address, authkey } (got ${typeof options})`);
    }
    checkOptionNames(options, managerOptionNames, `new ${new.target.name}()`);
    this.#address = options.address === undefined ? undefined : checkAddress(options.address, "options.address");
    this.#authkey = checkAuthkey(options.authkey, "options.authkey") ?? randomBytes(32);
    this.#method = resolveMethod(options, "process", new.target.name);
    this.#registry = registryOf(new.target);
  }

  /** Registers `typeid` for this manager only (before `start()` or `connect()`). */
  register(typeid: string, callable?: Function, options: RegisterOptions = {}): void {
    checkRegistration(typeid, callable, options);
    if (this.#state !== "initial") throw new ProcessError("register() types before start() or connect()");
    this.#registry.set(typeid, {
      typeid,
      callable,
      exposed: options.exposed,
      methodToTypeid: options.methodToTypeid,
      proxy: "auto",
    });
  }

  /** Where the server listens (for TCP with port 0: the port it got). */
  get address(): SocketAddress {
    if (!this.#address) throw new ProcessError("the manager has no address until start()");
    return this.#address;
  }

  /** The authkey clients must hold (random unless given). */
  get authkey(): Buffer {
    return this.#authkey;
  }

  /** The server's process id once started (a thread-mode server shares this process's pid). */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Whether this manager was started or connected and not yet shut down. */
  get running(): boolean {
    return this.#state === "started" || this.#state === "connected";
  }

  #config(local: boolean): ServerConfig {
    const registry: (Registration & { local?: Function })[] = [...this.#registry.values()].map((e) => ({
      typeid: e.typeid,
      builtin: e.builtin,
      callable:
        e.callable && !local ? codeRef(e.callable, `the callable registered for typeid "${e.typeid}"`) : undefined,
      local: local ? e.callable : undefined,
      exposed: e.exposed ? [...e.exposed] : undefined,
      methodToTypeid: e.methodToTypeid,
      proxy: e.proxy,
    }));
    return { address: this.#address ?? localAddress("mpts-manager"), authkey: this.#authkey, registry };
  }

  /**
   * Starts the server in a child process (or worker thread, per `context`) and connects to it.
   * Rejects if the server cannot start (address in use, a registered callable that cannot be found).
   */
  async start(): Promise<this> {
    if (this.#state !== "initial") throw new ProcessError(`cannot start a manager that is ${this.#state}`);
    this.#state = "starting";
    // the server is a daemon and a pipe read holds no handle: keep the program alive until it is up
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      const config = this.#config(false);
      const [reader, writer] = Pipe(false);
      libraryCodeRef(runManagerServer, managerServerModule);
      const server = new Process({
        target: runManagerServer,
        args: [config, writer],
        daemon: true,
        context: this.#method,
        name: `${this.constructor.name}-server`,
      });
      server.start();
      this.#process = server;
      const ended = server._ended!.then(() => {
        throw new ProcessError(
          `the manager's server process exited (exit code ${server.exitcode}) before it was ready`,
        );
      });
      const reply = (await Promise.race([reader.recv(), ended])) as
        | { ok: true; address: SocketAddress }
        | { ok: false; error: unknown };
      reader.close();
      if (!reply.ok) throw reply.error;
      this.#address = reply.address;
      await this.#connect();
      this.#state = "started";
      void server._ended!.then(() => {
        if (this.#state === "started") this.#state = "shutdown";
      });
      return this;
    } catch (error) {
      this.#state = "initial";
      this.#process?.kill();
      throw error;
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Connects to a server started elsewhere (at `address`, with the same `authkey`). */
  async connect(): Promise<this> {
    if (this.#state !== "initial") throw new ProcessError(`cannot connect a manager that is ${this.#state}`);
    if (!this.#address)
      throw new TypeError("connect() needs the server's address: new BaseManager({ address, authkey })");
    await this.#connect();
    this.#state = "connected";
    return this;
  }

  async #connect(): Promise<void> {
    shutDown.delete(clientKey(this.#address!, this.#authkey.toString("hex")));
    this.#client = ManagerClient.for(this.#address!, this.#authkey.toString("hex"));
    this.#client.join();
    await this.#client.ready;
  }

  /**
   * Runs the server in this process instead of a child (Python's `get_server()`): for a machine
   * that only serves. `serveForever()` resolves when a client shuts it down.
   */
  async getServer(): Promise<ManagerServerHandle> {
    if (this.#state !== "initial") throw new ProcessError(`cannot serve from a manager that is ${this.#state}`);
    const server = await ManagerServer.start(this.#config(true));
    this.#address = server.address;
    return { address: server.address, serveForever: () => server.done, close: () => server.close() };
  }

  /**
   * Creates an object of a registered `typeid` in the server, calling its callable with `args`, and
   * resolves with its proxy. An error the callable throws rejects here, with its class.
   */
  async create<T = any>(typeid: string, ...args: unknown[]): Promise<AutoProxy<T>> {
    const { proxy, made } = this.#create(typeid, args);
    await made;
    return proxy as AutoProxy<T>;
  }

  /** @internal Creates an object and returns its proxy at once; a failure shows on the proxy's calls. */
  protected _createNow<P extends BaseProxy>(typeid: string, args: unknown[]): P {
    const { proxy, made } = this.#create(typeid, args);
    made.catch(() => {});
    return proxy as P;
  }

  #create(typeid: string, args: unknown[]): { proxy: BaseProxy; made: Promise<unknown> } {
    if (this.#state === "shutdown") throw new ClosedError("the manager was shut down");
    if (this.#state !== "started" && this.#state !== "connected") {
      throw new ProcessError("start() or connect() the manager before creating objects");
    }
    const entry = this.#registry.get(typeid);
    if (!entry) {
      throw new TypeError(
        `unknown typeid ${JSON.stringify(typeid)}: register it first, e.g. ${this.constructor.name}.register(${JSON.stringify(typeid)}, callable)`,
      );
    }
    const encoded = encode(args, "bytes", `${typeid}() arguments`);
    const client = this.#client!;
    const id = client.newId();
    const authkey = this.#authkey.toString("hex");
    const token: Token = { typeid, id, address: this.#address!, authkey, proxy: entry.proxy };
    const made = client.request({ k: "create", id, typeid, a: encoded.value, h: encoded.changed });
    ManagerClient.track(made);
    return { proxy: makeProxy(token), made };
  }

  /**
   * Shuts the server down (a started manager) and waits for its process to end; a connected
   * manager only disconnects. Proxies of its objects then reject with ClosedError.
   */
  async shutdown(): Promise<void> {
    const state = this.#state;
    if (state === "shutdown" || state === "initial") return;
    this.#state = "shutdown";
    const key = clientKey(this.#address!, this.#authkey.toString("hex"));
    if (state === "connected") {
      this.#client?.disconnect();
      return;
    }
    shutDown.add(key);
    try {
      await this.#client!.request({ k: "shutdown" });
    } catch {
      // already gone
    }
    const server = this.#process!;
    await server.join(2000);
    if (server.isAlive()) server.kill();
    await server.join();
  }

  /** Shuts down (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /** Shows the state and, once started, the server's address. */
  [inspect.custom](): string {
    const where = this.#address ? `, address: ${formatAddress(this.#address)}` : "";
    return `${this.constructor.name} { state: '${this.#state}'${where} }`;
  }
}

const barrierOptionNames = optionNames<NonNullable<Parameters<Manager["Barrier"]>[1]>>({ timeout: true });

/**
 * Python's `SyncManager`: a server holding dicts, lists, namespaces, queues, locks and values for
 * every process that has their proxies.
 *
 * ```ts
 * await using manager = await Manager.start();
 * const scores = manager.dict<string, number>();
 * await pool.map(score, names.map((n) => [scores, n]));
 * console.log(await scores.toObject());
 * ```
 */
export class Manager extends BaseManager {
  /** Starts a manager (server in a child process, or a thread with `context: "thread"`). */
  static start(options?: ManagerOptions): Promise<Manager> {
    return new Manager(options).start();
  }

  /** A new dict on the server, optionally filled from `init`. */
  dict<K = string, V = unknown>(init?: Map<K, V> | Iterable<readonly [K, V]> | Record<string, V>): DictProxy<K, V> {
    const pairs =
      init instanceof Map
        ? [...init]
        : init && Symbol.iterator in Object(init)
          ? [...(init as Iterable<[K, V]>)]
          : init;
    return this._createNow("dict", pairs === undefined ? [] : [pairs]);
  }
  /** A new list on the server, optionally filled from `init`. */
  list<T = unknown>(init?: Iterable<T>): ListProxy<T> {
    return this._createNow("list", init === undefined ? [] : [[...init]]);
  }
  /** A new namespace (named attributes) on the server. */
  Namespace(init?: Record<string, unknown>): NamespaceProxy {
    return this._createNow("Namespace", init === undefined ? [] : [init]);
  }
  /** A new FIFO queue on the server; `maxsize` 0 (default) means unbounded. */
  Queue<T = unknown>(maxsize = 0): QueueProxy<T> {
    return this._createNow("Queue", [maxsize]);
  }
  /** A new queue with `taskDone()` and `join()`. */
  JoinableQueue<T = unknown>(maxsize = 0): JoinableQueueProxy<T> {
    return this._createNow("JoinableQueue", [maxsize]);
  }
  /** A new lock. */
  Lock(): LockProxy {
    return this._createNow("Lock", []);
  }
  /** A new re-entrant lock. */
  RLock(): RLockProxy {
    return this._createNow("RLock", []);
  }
  /** A new semaphore. */
  Semaphore(value = 1): SemaphoreProxy {
    return this._createNow("Semaphore", [value]);
  }
  /** A new semaphore that may not be released above its initial value. */
  BoundedSemaphore(value = 1): SemaphoreProxy {
    return this._createNow("BoundedSemaphore", [value]);
  }
  /** A new event. */
  Event(): EventProxy {
    return this._createNow("Event", []);
  }
  /** A new condition, over its own RLock or the given Lock/RLock of this manager. */
  Condition(lock?: LockProxy): ConditionProxy {
    return this._createNow("Condition", lock === undefined ? [] : [lock]);
  }
  /** A new barrier for `parties` callers (an `action` cannot run in the server: call it after `wait()` resolves 0). */
  Barrier(parties: number, options: { timeout?: number } = {}): BarrierProxy {
    checkOptionNames(options, barrierOptionNames, "manager.Barrier()");
    return this._createNow("Barrier", [parties, options]);
  }
  /** A new typed value (64-bit typecodes hold bigints). */
  Value<T extends Typecode>(typecode: T, value: Scalar<T>): ValueProxy<Scalar<T>> {
    return this._createNow("Value", [typecode, value]);
  }
  /** A new fixed-length typed array of `sizeOrItems` zeros or items. */
  Array<T extends Typecode>(typecode: T, sizeOrItems: number | Iterable<Scalar<T>>): ArrayProxy<Scalar<T>> {
    return this._createNow("Array", [typecode, typeof sizeOrItems === "number" ? sizeOrItems : [...sizeOrItems]]);
  }
}

{
  const own = new Map<string, Entry>();
  const builtins = [
    "dict",
    "list",
    "Namespace",
    "Queue",
    "JoinableQueue",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
  ];
  builtins.push("Event", "Condition", "Barrier", "Value", "Array");
  for (const typeid of builtins) {
    own.set(typeid, { typeid, builtin: typeid, proxy: typeid === "BoundedSemaphore" ? "Semaphore" : typeid });
  }
  registries.set(Manager, own);
}

/** @internal The registrations of Manager's own types, for a server of them. */
export function builtinRegistry(): Registration[] {
  return [...registries.get(Manager)!.values()].map((e) => ({ typeid: e.typeid, builtin: e.builtin, proxy: e.proxy }));
}
