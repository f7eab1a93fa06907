/**
 * The `cluster` option: which Redis server and which queue a cluster pool (or worker) uses, checked
 * once at the public edge. Every message names the URL without its password.
 *
 *   "redis://[user][:password@]host[:port][/db]"   TCP
 *   "rediss://…"                                   TCP with TLS
 *   "unix:///path/redis.sock"                       a Unix socket (a password as unix://:pw@/path)
 *   { url, queue, brokerTimeout, workerWaitTimeout } to share one Redis between several clusters
 */
import { BrokerLostError } from "../../errors.js";
import { checkInteger, checkOptionNames, optionNames } from "../validate.js";

/** The `cluster` option of a Pool or executor: a Redis URL, or one with the queue and the timeouts. */
export type ClusterOption =
  | string
  | {
      /** `redis://[:password@]host:port[/db]`, `rediss://…` (TLS) or `unix:///path/redis.sock`. */
      url: string;
      /** The BullMQ queue the workers listen on (default `"mp"`); the workers' `--queue` must match. */
      queue?: string;
      /**
       * How long the pool waits for a lost Redis connection to come back before the calls still
       * waiting reject with BrokerLostError, in ms (default 10000).
       */
      brokerTimeout?: number;
      /** How long a task may wait for a worker to take it before NoWorkersError, in ms (default 30000). */
      workerWaitTimeout?: number;
    };

/** A checked cluster target. */
export interface ClusterTarget {
  /** The URL as given. */
  readonly url: string;
  /** The URL without its password, for messages. */
  readonly display: string;
  /** ioredis connection options. */
  readonly connection: Record<string, unknown>;
  readonly queue: string;
  readonly brokerTimeout: number;
  readonly workerWaitTimeout: number;
}

const targetNames = optionNames<Exclude<ClusterOption, string>>({
  url: true,
  queue: true,
  brokerTimeout: true,
  workerWaitTimeout: true,
});

/** The default queue name, shared by pools and workers. */
export const DEFAULT_QUEUE = "mp";

/** Checks a `cluster` option; `what` names it in messages (e.g. "options.cluster"). */
export function clusterTarget(value: unknown, what: string): ClusterTarget {
  const given = typeof value === "string" ? { url: value } : value;
  if (given === null || typeof given !== "object" || Array.isArray(given)) {
    throw new TypeError(
      `${what} must be a Redis URL (redis://host:6379, rediss://…, unix:///path/redis.sock) or { url, queue } (got ${given === null ? "null" : typeof given})`,
    );
  }
  checkOptionNames(given, targetNames, what);
  const o = given as Exclude<ClusterOption, string>;
  const queue = o.queue ?? DEFAULT_QUEUE;
  checkQueueName(queue, `${what}.queue`);
  const brokerTimeout = o.brokerTimeout ?? 10_000;
  checkInteger(brokerTimeout, `${what}.brokerTimeout`, 1);
  const workerWaitTimeout = o.workerWaitTimeout ?? 30_000;
  checkInteger(workerWaitTimeout, `${what}.workerWaitTimeout`, 1);
  const { connection, display } = parseRedisUrl(o.url, `${what}${typeof value === "string" ? "" : ".url"}`);
  return { url: o.url, display, connection, queue, brokerTimeout, workerWaitTimeout };
}

/** Checks a queue name: BullMQ keys are `bull:<queue>:…`, so it may not contain `:`. */
export function checkQueueName(queue: unknown, what: string): string {
  if (typeof queue !== "string" || !/^[A-Za-z0-9_.-]{1,100}$/.test(queue)) {
    throw new TypeError(`${what} must be 1 to 100 letters, digits, '_', '.' or '-' (got ${JSON.stringify(queue)})`);
  }
  return queue;
}

/** ioredis options for a Redis URL, and the URL without its password. */
export function parseRedisUrl(url: unknown, what: string): { connection: Record<string, unknown>; display: string } {
  if (typeof url !== "string" || url.length === 0) {
    throw new TypeError(
      `${what} must be a Redis URL such as redis://host:6379, rediss://host:6380 or unix:///path/redis.sock (got ${url === "" ? '""' : typeof url})`,
    );
  }
  const display = hidePassword(url);
  // unix://[user:password@]/path: a URL parser wants a host before the path, which a socket has not
  const unix = /^unix:\/\/(?:([^:@/]*):([^@/]*)@)?(\/.*)$/.exec(url);
  if (unix) {
    const [, user, pass, path] = unix;
    const auth = {
      ...(pass && { password: decodeURIComponent(pass) }),
      ...(user && { username: decodeURIComponent(user) }),
    };
    return { connection: { path: decodeURIComponent(path!), ...auth }, display };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `${what} is not a URL (got ${JSON.stringify(hidePassword(url))}): use redis://host:6379, rediss://host:6380 or unix:///path/redis.sock`,
    );
  }
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  const username = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const auth = { ...(password !== undefined && { password }), ...(username !== undefined && { username }) };
  switch (parsed.protocol) {
    case "redis:":
    case "rediss:": {
      if (!parsed.hostname) throw new TypeError(`${what} names no host (got ${JSON.stringify(display)})`);
      const port = parsed.port ? Number(parsed.port) : 6379;
      const db = parsed.pathname && parsed.pathname !== "/" ? Number(parsed.pathname.slice(1)) : 0;
      if (!Number.isInteger(db) || db < 0) {
        throw new TypeError(`${what}: the database after the port must be a number (got ${JSON.stringify(display)})`);
      }
      const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
      const tls = parsed.protocol === "rediss:" ? { tls: { servername: host } } : {};
      return { connection: { host, port, db, ...auth, ...tls }, display };
    }
    case "unix:":
      throw new TypeError(`${what} names no socket path (got ${JSON.stringify(display)}): use unix:///path/redis.sock`);
    default:
      throw new TypeError(`${what} must start with redis://, rediss:// or unix:// (got ${JSON.stringify(display)})`);
  }
}

/** The URL with its password replaced by `***`. */
export function hidePassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/)([^:@/]*):([^@/]*)@/i, "$1$2:***@");
}

/** An error for a Redis server that could not be used, naming the URL without its password. */
export function connectError(target: { display: string }, error: unknown): BrokerLostError {
  const reason = error instanceof Error ? error.message : String(error);
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(reason)) {
    return new BrokerLostError(
      `the Redis server at ${target.display} refused the password: put the right one in the URL (redis://:PASSWORD@host:port)`,
    );
  }
  return new BrokerLostError(`cannot reach the Redis server at ${target.display}: ${reason}`);
}
