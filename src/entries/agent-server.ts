/**
 * What the fallback agent thread does (see internal/manager/agent.ts): it runs this process's broker, a
 * manager server holding the shared objects this process creates, and makes every call of this
 * process on any broker, through one connection per broker.
 */
import { randomBytes } from "node:crypto";
import type { AgentRequest } from "../internal/manager/agent.js";
import { builtinRegistry } from "../managers.js";
import { proxyFor } from "../proxies.js";
import { ManagerServer, type Token } from "../internal/manager/server.js";
import { localAddress } from "../internal/wire/sockets.js";

/** An argument that names another shared object (a Condition's lock). */
export interface TokenArg {
  agentToken: Token;
}

interface Broker {
  server: ManagerServer;
  /** This process's caller number on its own broker. */
  caller: number;
}

async function startBroker(): Promise<Broker> {
  // the server rebuilds proxies that arrive in arguments with the library's classes
  await import("../index.js");
  const authkey = randomBytes(32);
  const server = await ManagerServer.start({
    address: localAddress("mpts-broker"),
    authkey,
    registry: builtinRegistry(),
  });
  return { server, caller: server.reserveCaller() };
}

/**
 * The agent's request handler. Objects of this process's own broker are called directly; others
 * through a proxy (one connection per broker).
 */
export function runAgent(): (request: AgentRequest, signal: AbortSignal) => Promise<unknown> {
  let starting: Promise<Broker> | undefined;
  let broker: Broker | undefined;
  return async (request, signal) => {
    if (request.op === "create") {
      starting ??= startBroker();
      broker = await starting;
      const args = request.args.map((arg) =>
        arg && typeof arg === "object" && "agentToken" in arg ? proxyFor((arg as TokenArg).agentToken) : arg,
      );
      return broker.server.createHere(broker.caller, request.typeid, args);
    }
    const token = request.token as Token;
    if (broker?.server.holds(token)) {
      return broker.server.callHere(broker.caller, token, request.method, request.args, signal);
    }
    return proxyFor(token)._callMethod(request.method, request.args, { signal, blocking: true });
  };
}
