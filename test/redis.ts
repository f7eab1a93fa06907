// A real redis-server for the cluster tests: found, or installed with apt-get when missing and
// running as root, then started on a Unix socket in a temporary folder and stopped by its pid; it
// dies with the test runner, even a killed one (src/backends/redis-server.ts's supervisor).
// Without the server and without root the cluster suites skip, saying why; in CI (CI=true) a
// missing server is a failure, never a skip.
import { execFileSync } from "node:child_process";
import { type RedisServer, findRedisServer, startRedisServer } from "../src/backends/redis-server.ts";

export type { RedisServer };

let installTried = false;

/** Why the cluster suites cannot run here, or undefined when redis-server is (now) installed. */
export function redisUnavailable(): string | undefined {
  if (findRedisServer()) return undefined;
  if (process.getuid?.() === 0 && !installTried) {
    installTried = true;
    try {
      execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 120_000 });
      execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "redis-server"], {
        stdio: "ignore",
        timeout: 180_000,
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch {
      // reported below
    }
    if (findRedisServer()) return undefined;
  }
  const reason = "redis-server is not installed (apt-get install redis-server, or run the tests as root)";
  if (process.env.CI === "true" || process.env.CI === "1") {
    throw new Error(`the cluster suite must run in CI, but ${reason}`);
  }
  return reason;
}

/** Starts a private server; the caller stops it with `stop()` in an after() hook. */
export function startRedis(options: { password?: string; port?: number } = {}): Promise<RedisServer> {
  return startRedisServer(options);
}
