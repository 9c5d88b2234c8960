import type { Broker } from "../brokers/broker.js";
import type { IdRegistry } from "./ids/registry.js";
import { SingleNode } from "./ids/registry.js";

/** Which other nodes a server works with as one service. */
export type Spread =
  /** A worker of a node:cluster whose primary runs `runPrimary` (the CLI's `--workers`). */
  | { readonly cluster: true }
  /** Every server sharing the Redis at `url` (`redis://host:port`, `rediss://` for TLS). */
  | { readonly redis: string };

/** What a node needs to work with the others: a broker for `Channels`, and where ids are claimed. */
export interface Nodes {
  /** Undefined for a server alone. */
  readonly broker: Broker | undefined;
  readonly registry: IdRegistry;
  /** Whether there are other nodes at all. */
  readonly remote: boolean;
}

/**
 * Makes the broker and the id registry for `spread`. The Redis and cluster modules are loaded only
 * when asked for, so a server alone never loads ioredis.
 */
export async function nodes(spread: Spread | undefined): Promise<Nodes> {
  if (spread === undefined) return { broker: undefined, registry: new SingleNode(), remote: false };
  if ("redis" in spread) {
    const [{ RedisBroker }, { RedisIds }] = await Promise.all([import("../brokers/redis.js"), import("./ids/redis.js")]);
    return { broker: new RedisBroker({ url: spread.redis }), registry: new RedisIds({ url: spread.redis }), remote: true };
  }
  const [{ ClusterBroker }, { ClusterIds }] = await Promise.all([import("../brokers/cluster.js"), import("./ids/cluster.js")]);
  return { broker: new ClusterBroker(), registry: new ClusterIds(), remote: true };
}
