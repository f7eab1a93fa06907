/**
 * A private `redis-server` for tests, CI and the cluster demo: found on the PATH (or where Debian
 * puts it), started on a Unix socket in a fresh temporary folder (no TCP port, so no clash with a
 * system Redis on 6379 and nothing exposed to the network), with a pidfile, and stopped by that pid
 * only, never by name.
 *
 *   findRedisServer() ─► startRedisServer() ─► { url: "unix:///tmp/mpts-redis-…/redis.sock", pid, stop() }
 *
 *   this process ══stdin pipe══► supervisor (node, no program code) ─► redis-server (not daemonized)
 *                                 stdin ends (this process exited, even killed) ─► SIGTERM, SIGKILL after 2 s
 *
 * redis-server has no way to die with the process that started it, so a tiny supervisor holds it:
 * the pipe to its stdin closes whenever this process ends, however it ends, and the supervisor then
 * stops the server. A test runner, a demo or a bench that is killed leaves no server behind.
 *
 * Installing the server is the caller's business (a test helper may run apt-get as root; the demo
 * says how to install it): this module never installs anything.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { processRuns } from "../internal/pids.js";

/** A running private Redis server. */
export interface RedisServer {
  /** `unix:///…/redis.sock` (or `redis://127.0.0.1:<port>` when started with a port). */
  readonly url: string;
  /** The socket's path (undefined when listening on TCP). */
  readonly socket: string | undefined;
  /** The server's pid, read from its pidfile. */
  readonly pid: number;
  /** The temporary folder holding the socket, the pidfile and the log. */
  readonly dir: string;
  /** Stops the server by its pid (SIGTERM, then SIGKILL after 2 s) and removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** A password the server requires (`requirepass`). */
  password?: string;
  /** Listen on 127.0.0.1:`port` instead of a Unix socket (0 picks none: socket only). */
  port?: number;
  /** How long to wait for the server to answer PING, in ms (default 5000). */
  timeout?: number;
}

/** The path of `redis-server`, or undefined when it is not installed. */
export function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, "redis-server");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Starts a private Redis server; rejects with the server's log when it does not come up. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  if (!binary) {
    throw new Error(
      "redis-server is not installed: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "mpts-redis-"));
  const socket = options.port ? undefined : join(dir, "redis.sock");
  const pidfile = join(dir, "redis.pid");
  const args = [
    "--port",
    String(options.port ?? 0),
    ...(socket ? ["--unixsocket", socket, "--unixsocketperm", "700"] : ["--bind", "127.0.0.1"]),
    "--protected-mode",
    "yes",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--pidfile",
    pidfile,
    "--logfile",
    join(dir, "redis.log"),
    ...(options.password ? ["--requirepass", options.password] : []),
  ];
  const supervisor = spawn(process.execPath, ["-e", SUPERVISOR, binary, ...args], {
    stdio: ["pipe", "ignore", "ignore"],
    // no loader of this program's (tsx…): the supervisor is plain JavaScript
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  let launched: number | null | undefined;
  supervisor.on("exit", (code) => (launched = code));
  supervisor.on("error", () => (launched = -1));
  // neither keeps this process alive: the pipe is held only to be closed when this process ends
  supervisor.unref();
  (supervisor.stdin as unknown as { unref(): void }).unref();
  supervisor.stdin!.on("error", () => {});
  const deadline = Date.now() + (options.timeout ?? 5000);
  let pid: number | undefined;
  while (Date.now() < deadline && launched === undefined) {
    pid ??= readPid(pidfile);
    if (pid !== undefined && (await answers(socket, options.port))) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (pid === undefined || !(await answers(socket, options.port))) {
    const log = existsSync(join(dir, "redis.log")) ? readFileSync(join(dir, "redis.log"), "utf8") : "";
    if (pid !== undefined) kill(pid, "SIGKILL");
    supervisor.stdin!.end();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `redis-server did not start (exit code ${launched}):\n${log.trim().split("\n").slice(-5).join("\n")}`,
    );
  }
  const serverPid = pid;
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : "";
  const url = socket ? `unix://${auth}${socket}` : `redis://${auth}127.0.0.1:${options.port}`;
  return {
    url,
    socket,
    pid: serverPid,
    dir,
    async stop() {
      kill(serverPid, "SIGTERM");
      const end = Date.now() + 2000;
      while (processRuns(serverPid) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
      if (processRuns(serverPid)) kill(serverPid, "SIGKILL");
      while (processRuns(serverPid)) await new Promise((resolve) => setTimeout(resolve, 20));
      supervisor.stdin!.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The supervisor: `node -e SUPERVISOR <redis-server> <args…>` runs the server and stops it (SIGTERM,
 * then SIGKILL after 2 s) once its stdin ends; it exits when the server does.
 */
const SUPERVISOR = `
const { spawn } = require("node:child_process");
const [binary, ...args] = process.argv.slice(1);
const server = spawn(binary, args, { stdio: "ignore" });
server.on("exit", (code) => process.exit(code ?? 1));
server.on("error", () => process.exit(127));
const stop = () => {
  server.kill("SIGTERM");
  setTimeout(() => server.kill("SIGKILL"), 2000).unref();
};
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
`;

function readPid(pidfile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidfile, "utf8"), 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a server answers PING there (a password-protected one answers NOAUTH, which counts). */
function answers(socket: string | undefined, port: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = socket ? connect(socket) : connect(port!, "127.0.0.1");
    const done = (ok: boolean) => {
      conn.destroy();
      resolve(ok);
    };
    conn.setTimeout(500, () => done(false));
    conn.on("error", () => done(false));
    conn.on("connect", () => conn.write("PING\r\n"));
    conn.on("data", (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())));
  });
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
