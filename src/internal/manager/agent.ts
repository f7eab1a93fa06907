/**
 * The fallback agent: a worker thread, one per process (or thread) that needs it, through which
 * shared primitives work when the native addon is missing.
 *
 *   main thread ──postMessage──► agent thread ──socket──► the agent server that holds the object
 *   (sync calls block on Atomics.wait and read the reply with receiveMessageOnPort)
 *
 * The agent server is a manager server the agent of the creating process runs; objects live there, and
 * every process reaches them through its own agent, so a lock's owner is the calling process
 * whichever way it calls (`acquire()` or `acquireSync()`). The agent thread never blocks, so a
 * process whose main thread waits in `acquireSync()` still serves the others.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from "node:worker_threads";
import { ProcessError } from "../../errors.js";
import { PendingCalls } from "../wire/calls.js";
import { decode, encode, encodeError } from "../wire/codec.js";
import { agentEntry } from "../paths.js";

/** A request to the agent: make an object on this process's agent server, or call a method of one. */
export type AgentRequest =
  | { op: "create"; typeid: string; args: unknown[] }
  | { op: "call"; token: unknown; method: string; args: unknown[] };

interface Reply {
  q: number;
  ok: boolean;
  v: unknown;
}

const entry = agentEntry;
/** How long a sync call waits for an agent thread that has not started before it gives up. */
const startDeadlineMs = 20_000;

// The shared flags: [0] a sync reply is ready (or the agent changed state); [1] the agent's state.
const REPLY = 0;
const STATE = 1;
const STARTING = 0;
const UP = 1;
const GONE = 2;

class Agent {
  #worker: Worker;
  #asyncPort: MessagePort;
  #syncPort: MessagePort;
  #flag = new Int32Array(new SharedArrayBuffer(8));
  #pending = new PendingCalls({
    cancel: (q) => this.#asyncPort.postMessage({ c: q }),
    busy: (busy) => (busy ? this.#asyncPort.ref() : this.#asyncPort.unref()),
  });
  #next = 1;
  #dead: Error | undefined;

  constructor() {
    if (!existsSync(fileURLToPath(entry))) {
      throw new ProcessError(
        `shared objects without the native addon need the agent script ${fileURLToPath(entry)}, which is missing: ` +
          "run the built package (npm run build), not its TypeScript sources",
      );
    }
    const asyncChannel = new MessageChannel();
    const syncChannel = new MessageChannel();
    this.#asyncPort = asyncChannel.port1;
    this.#syncPort = syncChannel.port1;
    this.#worker = new Worker(entry, {
      workerData: { asyncPort: asyncChannel.port2, syncPort: syncChannel.port2, flag: this.#flag },
      transferList: [asyncChannel.port2, syncChannel.port2],
      execArgv: [],
    });
    this.#worker.unref();
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", () => this.#fail(new ProcessError("the shared-object agent thread exited")));
    this.#asyncPort.on("message", (reply: Reply) =>
      this.#pending.settle(reply.q, reply.ok, reply.ok ? reply.v : decode(reply.v)),
    );
    this.#asyncPort.unref();
  }

  #fail(error: Error): void {
    this.#dead ??= new ProcessError(`shared objects cannot work: ${error.message}`, { cause: error });
    this.#pending.rejectAll(this.#dead);
  }

  /**
   * Runs `request` and blocks this thread until it is done. Events cannot reach a blocked thread,
   * so the agent's state is read from shared memory: an agent that exits says so there, and one
   * that never starts (its script failed to load) is given up on after `startDeadlineMs`.
   */
  callSync(request: AgentRequest): unknown {
    if (this.#dead) throw this.#dead;
    const q = this.#next++;
    Atomics.store(this.#flag, REPLY, 0);
    this.#syncPort.postMessage({ q, ...packRequest(request) });
    const started = performance.now();
    for (;;) {
      // an agent already gone cannot answer: do not wait for it
      if (Atomics.load(this.#flag, STATE) !== GONE) Atomics.wait(this.#flag, REPLY, 0, 1000);
      // read the state before the port: a reply posted just before the agent exited still counts
      const state = Atomics.load(this.#flag, STATE);
      const received = receiveMessageOnPort(this.#syncPort);
      if (received) {
        const reply = received.message as Reply;
        if (reply.q !== q) continue;
        if (reply.ok) return reply.v;
        throw decode(reply.v);
      }
      if (this.#dead) throw this.#dead;
      if (state === GONE) this.#fail(new ProcessError("the shared-object agent thread exited"));
      else if (state === STARTING && performance.now() - started > startDeadlineMs) {
        this.#fail(new ProcessError(`the shared-object agent thread did not start within ${startDeadlineMs / 1000} s`));
      }
      if (this.#dead) throw this.#dead;
    }
  }

  /** Runs `request` without blocking; an abort of `signal` asks the agent server to give up. */
  call(request: AgentRequest, signal?: AbortSignal): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    return this.#pending.start((q) => this.#asyncPort.postMessage({ q, ...packRequest(request) }), signal);
  }
}

function packRequest(request: AgentRequest): AgentRequest & { h: boolean } {
  const { value, changed } = encode(request.args, "clone", "arguments");
  return { ...request, args: value as unknown[], h: changed };
}

let agent: Agent | undefined;

/** This process's agent, started on first use. */
export function fallbackAgent(): Agent {
  agent ??= new Agent();
  return agent;
}

/** Worker side: wires the ports to `handle`, which runs one request. */
export function serveAgent(
  ports: { asyncPort: MessagePort; syncPort: MessagePort; flag: Int32Array },
  handle: (request: AgentRequest, signal: AbortSignal) => Promise<unknown>,
): void {
  const { flag } = ports;
  Atomics.store(flag, STATE, UP);
  process.on("exit", () => {
    // wakes a caller blocked in callSync, which then finds the agent gone
    Atomics.store(flag, STATE, GONE);
    Atomics.store(flag, REPLY, 1);
    Atomics.notify(flag, REPLY);
  });
  // sync and async calls are numbered separately: one table of controllers per port
  const asyncControllers = new Map<number, AbortController>();
  const syncControllers = new Map<number, AbortController>();
  const run = (port: MessagePort, message: AgentRequest & { q: number; h: boolean }, wake: boolean) => {
    const controllers = wake ? syncControllers : asyncControllers;
    const controller = new AbortController();
    controllers.set(message.q, controller);
    const args = (message.h ? decode(message.args) : message.args) as unknown[];
    const send = (ok: boolean, v: unknown) => {
      controllers.delete(message.q);
      let out = v;
      if (ok) {
        try {
          out = encode(v, "clone", "result").value;
        } catch (error) {
          ok = false;
          out = error;
        }
      }
      port.postMessage({ q: message.q, ok, v: ok ? out : encodeError(out, "clone") });
      if (wake) {
        Atomics.store(flag, REPLY, 1);
        Atomics.notify(flag, REPLY);
      }
    };
    handle({ ...message, args }, controller.signal).then(
      (v) => send(true, v),
      (e) => send(false, e),
    );
  };
  ports.asyncPort.on("message", (message: { c?: number } & AgentRequest & { q: number; h: boolean }) => {
    if (message.c !== undefined) asyncControllers.get(message.c)?.abort(new ProcessError("cancelled by the caller"));
    else run(ports.asyncPort, message, false);
  });
  ports.syncPort.on("message", (message: AgentRequest & { q: number; h: boolean }) =>
    run(ports.syncPort, message, true),
  );
}
