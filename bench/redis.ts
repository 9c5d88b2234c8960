/*
 * redis-server (Debian's) for the benchmarks that need one: on a unix socket in a folder of the
 * caller's, with no persistence.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

/** Where `startRedis(dir)` listens. */
export const redisSocket = (dir: string): string => join(dir, "redis.sock");

/**
 * Starts redis-server on `redisSocket(dir)`, hands it to `track` at once (for the caller to kill
 * on exit), and resolves once it accepts connections; rejects after 10 s.
 */
export async function startRedis(dir: string, track: (child: ChildProcess) => void): Promise<ChildProcess> {
  const redis = spawn("redis-server", ["--port", "0", "--unixsocket", redisSocket(dir), "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(redis);
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
    redis.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (/ready to accept connections/i.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return redis;
}
