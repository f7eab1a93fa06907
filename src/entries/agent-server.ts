/**
 * What the fallback agent thread does (see internal/manager/agent.ts): it runs this process's agent server,
 * a manager server holding the shared objects this process creates, and makes every call of this
 * process on any agent server, through one connection per server.
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

interface AgentServer {
  server: ManagerServer;
  /** This process's caller number on its own agent server. */
  caller: number;
}

async function startAgentServer(): Promise<AgentServer> {
  // the server rebuilds proxies that arrive in arguments with the library's classes
  await import("../index.js");
  const authkey = randomBytes(32);
  const server = await ManagerServer.start({
    address: localAddress("mpts-agent"),
    authkey,
    registry: builtinRegistry(),
  });
  return { server, caller: server.reserveCaller() };
}

/**
 * The agent's request handler. Objects of this process's own agent server are called directly;
 * others through a proxy (one connection per server).
 */
export function runAgent(): (request: AgentRequest, signal: AbortSignal) => Promise<unknown> {
  let starting: Promise<AgentServer> | undefined;
  let own: AgentServer | undefined;
  return async (request, signal) => {
    if (request.op === "create") {
      starting ??= startAgentServer();
      own = await starting;
      const args = request.args.map((arg) =>
        arg && typeof arg === "object" && "agentToken" in arg ? proxyFor((arg as TokenArg).agentToken) : arg,
      );
      return own.server.createHere(own.caller, request.typeid, args);
    }
    const token = request.token as Token;
    if (own?.server.holds(token)) {
      return own.server.callHere(own.caller, token, request.method, request.args, signal);
    }
    return proxyFor(token)._callMethod(request.method, request.args, { signal, blocking: true });
  };
}
