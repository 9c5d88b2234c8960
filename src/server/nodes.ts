import type { Broker } from "../brokers/broker.js";
import type { IdRegistry } from "./ids/registry.js";
import { SingleNode } from "./ids/registry.js";
import { emitted } from "./wait.js";

/** Which other nodes a server works with as one service. */
export type Spread =
  /** A worker of a node:cluster whose primary runs `runPrimary` (the CLI's `--workers`). */
  | { readonly cluster: true }
  /** Every server sharing the Redis at `url` (`redis://host:port`, `rediss://` for TLS). */
  | { readonly redis: string };

/** How long a server waits at start-up for Redis or the cluster primary before serving alone meanwhile, in ms. */
export const START_WAIT_MS = 5_000;

/** What a node needs to work with the others: a broker for `Channels`, and where ids are claimed. */
export interface Nodes {
  /** Undefined for a server alone. */
  readonly broker: Broker | undefined;
  readonly registry: IdRegistry;
  /** Whether there are other nodes at all. */
  readonly remote: boolean;
  /**
   * Waits until the broker (once its `Channels` is made: a cluster broker says hello then) and the
   * registry are connected, at most START_WAIT_MS. @returns whether they are.
   */
  connected(): Promise<boolean>;
}

/**
 * Makes the broker and the id registry for `spread`. The Redis and cluster modules are loaded only
 * when asked for: a server alone never loads ioredis.
 */
export async function nodes(spread: Spread | undefined): Promise<Nodes> {
  if (spread === undefined) return { broker: undefined, registry: new SingleNode(), remote: false, connected: () => Promise.resolve(true) };
  if ("redis" in spread) {
    const [{ RedisBroker }, { RedisIds }] = await Promise.all([import("../brokers/redis.js"), import("./ids/redis.js")]);
    const broker = new RedisBroker({ url: spread.redis });
    const registry = new RedisIds({ url: spread.redis });
    const connected = async (): Promise<boolean> => (await Promise.all([brokerUp(broker), registry.ready(START_WAIT_MS)])).every(Boolean);
    return { broker, registry, remote: true, connected };
  }
  const [{ ClusterBroker }, { ClusterIds }] = await Promise.all([import("../brokers/cluster.js"), import("./ids/cluster.js")]);
  const broker = new ClusterBroker();
  return { broker, registry: new ClusterIds(), remote: true, connected: () => brokerUp(broker) };
}

/** Waits for the broker's first `up`, at most START_WAIT_MS. @returns whether it came. */
function brokerUp(broker: Broker): Promise<boolean> {
  return broker.stats().connected ? Promise.resolve(true) : emitted(broker, "up", START_WAIT_MS);
}
