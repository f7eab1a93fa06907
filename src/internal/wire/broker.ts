/**
 * The portable way to share an object between processes: its state stays in the process that made
 * it (the owner), and other processes call its methods over a Unix socket.
 *
 *   owner:  serve(obj) ──► ObjectServer (one per process or thread, started on first use)
 *   others: connect(address, id).call(op, args) ──► one socket per owner, requests multiplexed
 *
 * Any process can reach any owner by address, whatever the process tree looks like, so a Queue
 * passed from a child to a grandchild still reaches the queue. A call rejects with a ProcessError
 * when the owner goes away; nothing waits forever on a dead owner. Sockets keep a process alive
 * only while one of its calls is pending.
 */
import { type Server, type Socket, connect as netConnect, createServer } from "node:net";
import { threadId } from "../identity.js";
import { ProcessError } from "../../errors.js";
import { decode, encodeError } from "./codec.js";
import { PendingCalls } from "./calls.js";
import { ServedCalls } from "./rpc.js";
import { FramedSocket } from "./framing.js";
import { runtime } from "../runtime.js";
import { localAddress } from "./sockets.js";

/** An object whose methods other processes may call. */
export interface Served {
  /** Runs `op`; `signal` fires if the caller gives up (abort or timeout on its side). */
  call(op: string, args: unknown[], signal: AbortSignal): unknown;
}

/** Where a served object lives. */
export interface Address {
  address: string;
  id: number;
}

interface Request {
  q: number;
  o: number;
  op: string;
  a: unknown[];
}
interface Cancel {
  c: number;
}
type Reply = { q: number; ok: true; v: unknown } | { q: number; ok: false; e: unknown };

let server: Server | undefined;
let serverAddress: string | undefined;
const objects = new Map<number, Served>();
let nextObject = 1;

/** Makes `obj` callable from other processes; returns its address. */
export function serve(obj: Served): Address {
  if (!serverAddress) startServer();
  const id = nextObject++;
  objects.set(id, obj);
  return { address: serverAddress!, id };
}

function startServer(): void {
  serverAddress = localAddress(`mpts-t${threadId}`);
  server = createServer((socket) => accept(socket));
  server.on("error", (error) => process.stderr.write(`multiprocessing-ts: object server failed: ${error.message}\n`));
  server.listen(serverAddress);
  server.unref();
}

function accept(socket: Socket): void {
  const channel = new FramedSocket(socket);
  channel.unref();
  const calls = new ServedCalls();
  channel.onClose = () => calls.closeAll();
  channel.onMessage = (message) => {
    if ("c" in (message as object)) {
      calls.cancel((message as Cancel).c);
      return;
    }
    const { q, o, op, a } = message as Request;
    calls.run(
      q,
      (call) => {
        const target = objects.get(o);
        if (!target) throw new ProcessError("the shared object no longer exists");
        return target.call(op, a, call.signal);
      },
      (ok, v) => channel.send(ok ? { q, ok, v } : { q, ok, e: encodeError(v, "bytes") }),
    );
  };
}

/** A connection to one owner process, shared by every proxy of its objects. */
class BrokerConnection {
  #channel: FramedSocket;
  #calls: PendingCalls;
  #closedError: Error | undefined;

  constructor(readonly address: string) {
    const socket = netConnect(address);
    this.#channel = new FramedSocket(socket);
    this.#channel.unref();
    this.#calls = new PendingCalls({
      cancel: (q) => this.#channel.send({ c: q }),
      busy: (busy) => (busy ? this.#channel.ref() : this.#channel.unref()),
    });
    this.#channel.onMessage = (message) => {
      const reply = message as Reply;
      this.#calls.settle(reply.q, reply.ok, reply.ok ? reply.v : decode(reply.e));
    };
    this.#channel.onClose = (error) => {
      this.#closedError = new ProcessError(
        "the process that owns this shared object has exited (or closed it); create shared objects in a process that outlives their users",
        { cause: error },
      );
      connections.delete(address);
      this.#calls.rejectAll(this.#closedError);
    };
  }

  call(id: number, op: string, args: unknown[], signal?: AbortSignal): Promise<unknown> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    return this.#calls.start((q) => this.#channel.send({ q, o: id, op, a: args }), signal);
  }

  flush(): Promise<void> {
    return this.#channel.flush();
  }
}

const connections = new Map<string, BrokerConnection>();
const inFlight = new Set<Promise<unknown>>();
let exitHook = false;

/**
 * Calls `op` on the object at `target`; rejects if the owner is gone or reports an error. A child
 * finishes its calls still in flight (a `send()` that was not awaited) before it exits.
 */
export function callRemote(target: Address, op: string, args: unknown[], signal?: AbortSignal): Promise<unknown> {
  let connection = connections.get(target.address);
  if (!connection) {
    connection = new BrokerConnection(target.address);
    connections.set(target.address, connection);
  }
  const call = connection.call(target.id, op, args, signal);
  // only deliveries are waited for at exit: a forgotten get() must not hold the child forever
  if (op === "get" || op === "poll" || op === "join") return call;
  inFlight.add(call);
  const forget = () => inFlight.delete(call);
  call.then(forget, forget);
  if (!exitHook) {
    exitHook = true;
    runtime.beforeExit.push(async () => {
      while (inFlight.size) await Promise.allSettled([...inFlight]);
    });
  }
  return call;
}

/** True when `target` is served by this very process (or thread). */
export function isLocal(target: Address): boolean {
  return target.address === serverAddress;
}
