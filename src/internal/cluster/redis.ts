/**
 * BullMQ and ioredis, loaded on first use only (a program that never uses a cluster never loads
 * them), and the names of the few keys the library keeps beside BullMQ's own.
 */
import type { Redis as RedisClient } from "ioredis";

type Bullmq = typeof import("bullmq");

let bullmq: Promise<Bullmq> | undefined;

/** The bullmq module. */
export function loadBullmq(): Promise<Bullmq> {
  bullmq ??= import("bullmq");
  return bullmq;
}

/** The library's keys of one queue (BullMQ's are `bull:<queue>:…`). */
export function keys(queue: string) {
  return {
    /** Sorted set: worker id -> time its heartbeat expires (ms). */
    workers: `mpts:${queue}:workers`,
    /** A worker's {@link WorkerInfo} (JSON), which expires with its heartbeat. */
    worker: (id: string) => `mpts:${queue}:worker:${id}`,
    /** Pub/sub channel: ids of jobs to stop. */
    cancel: `mpts:${queue}:cancel`,
    /** A pool's heartbeat key, which expires when its caller dies. */
    pool: (id: string) => `mpts:${queue}:pool:${id}`,
  };
}

/** What a worker command tells pools about itself with its heartbeat (their `stats().workers`). */
export interface WorkerInfo {
  pid: number;
  host: string;
  state: "idle" | "busy" | "stopping";
  /** Jobs it finished since it started. */
  completed: number;
  /** How many jobs it runs at once (its BullMQ concurrency). */
  slots?: number;
}

/**
 * A connected ioredis client that retries a lost connection for ever (the caller decides when to
 * give up); rejects when the server cannot be reached or refuses the password within `timeout` ms.
 */
export async function openRedis(connection: Record<string, unknown>, timeout: number): Promise<RedisClient> {
  const { Redis } = await import("ioredis");
  const client = new Redis({
    ...connection,
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: timeout,
    retryStrategy: (times: number) => Math.min(50 * times, 500),
  });
  let lastError: unknown;
  client.on("error", (error: unknown) => (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(lastError ?? new Error(`no answer within ${timeout} ms`)), timeout);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    // ioredis reports "Connection is closed" where the server's own reply (WRONGPASS) says why
    throw lastError ?? error;
  } finally {
    clearTimeout(timer);
  }
  return client;
}
