import type { Adapter } from "./adapter.js";
import { Alone } from "./alone.js";

export { type Adapter, START_WAIT_MS } from "./adapter.js";

/** Which other nodes a server works with as one service. */
export type Spread =
  /** A worker of a node:cluster whose primary runs `runPrimary` (the CLI's `--workers`). */
  | { readonly cluster: true }
  /**
   * Every server sharing the Redis at `redis` (`redis://host:port`, `rediss://` for TLS, or a unix
   * socket path) with the same `prefix` (what every Redis name starts with; default `ws-channels`):
   * servers with another prefix on that Redis are another service.
   */
  | { readonly redis: string; readonly prefix?: string };

/**
 * Makes the adapter for `spread`: alone when undefined, else the cluster's or Redis's. Their
 * modules are loaded only when asked for: a server alone never loads ioredis.
 * @throws {TypeError} if the Redis `prefix` is not a string.
 */
export async function createAdapter(spread: Spread | undefined): Promise<Adapter> {
  if (spread === undefined) return new Alone();
  if ("redis" in spread) {
    const { RedisAdapter } = await import("./redis.js");
    return new RedisAdapter(spread.redis, spread.prefix);
  }
  const { ClusterAdapter } = await import("./cluster.js");
  return new ClusterAdapter();
}
