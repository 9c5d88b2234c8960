import { randomBytes } from "node:crypto";
import type { Broker, BrokerEvents, Channels } from "ws-channels";
import { RedisBroker, RedisConnections } from "ws-channels/redis";
import type { ClientMeta } from "../client-meta.js";
import type { HistorySettings } from "../history.js";
import { emitted } from "../wait.js";
import { type Adapter, type AdapterStats, brokerUp, type NodeAddress, START_WAIT_MS } from "./adapter.js";
import type { HistoryStore } from "./history-store.js";
import type { PresenceParts, PresenceStore } from "./presence.js";
import { RedisHistory } from "./redis-history.js";
import { RedisIds } from "./redis-ids.js";
import { RedisPresence } from "./redis-presence.js";

/**
 * Servers sharing one Redis, on any machine: broadcasts through `RedisBroker`, ids in Redis
 * (`RedisIds`), and node messages on each node's own Redis channel `PREFIX:node:ADDRESS`. All
 * three share one `RedisConnections`: two connections per node, one subscribing and one for
 * commands and publishes. Everything is named under the prefix, so that deployments with different
 * prefixes share one Redis without seeing each other's broadcasts, ids or node messages.
 */
export class RedisAdapter implements Adapter {
  /** 64 random bits: nodes on many machines need no registry to have distinct addresses. */
  readonly node: NodeAddress = randomBytes(8).toString("hex");
  readonly broker: Broker;
  readonly #connections: RedisConnections;
  readonly #ids: RedisIds;
  /** This node's Redis channel, as a name and as the bytes its messages arrive with. */
  readonly #name: string;
  readonly #nameBytes: Buffer;
  /** Resolves true once the subscriber's latest subscription to this node's channel is acknowledged. */
  #listening: Promise<boolean> = Promise.resolve(false);
  #receive: ((message: string) => void) | undefined;
  #unsent = 0;

  /**
   * @param url where Redis is (`redis://`, `rediss://`, a unix socket path).
   * @param prefix what every Redis name starts with. Default: `ws-channels`.
   * @throws {TypeError} if `url` or `prefix` is not a string.
   */
  constructor(url: string, prefix?: string) {
    this.#connections = new RedisConnections({ url, ...(prefix !== undefined && { prefix }) });
    this.broker = new RedisBroker({ connections: this.#connections });
    this.#ids = new RedisIds(this.#connections, this.node);
    this.#name = this.#connections.name("node", this.node);
    this.#nameBytes = Buffer.from(this.#name);
    this.#connections.subscriber.on("ready", this.#listen).on("messageBuffer", this.#onMessage);
  }

  claim(id: string, exclusive: boolean): Promise<boolean> {
    return this.#ids.claim(id, exclusive);
  }

  release(id: string): void {
    this.#ids.release(id);
  }

  locate(ids: readonly string[]): Promise<Map<string, NodeAddress[]>> {
    return this.#ids.locate(ids);
  }

  onLost(listener: (id: string) => void): void {
    this.#ids.onLost(listener);
  }

  sendToNode(node: NodeAddress, message: string): void {
    // rejected at once while the connection is down (no offline queue)
    this.#connections.commands.publish(this.#connections.name("node", node), message).catch((error: unknown) => {
      this.#unsent++;
      this.#connections.unanswered(error);
    });
  }

  onNodeMessage(listener: (message: string) => void): void {
    this.#receive = listener;
  }

  async ready(): Promise<boolean> {
    // the broker comes up on connections of its own; this node's channel is subscribed on the
    // shared subscriber once it is ready, which may come later
    const subscriber = this.#connections.subscriber;
    const [up, ready] = await Promise.all([
      brokerUp(this.broker),
      subscriber.status === "ready" || emitted(subscriber, "ready", START_WAIT_MS),
    ]);
    return up && ready && (await this.#listening);
  }

  stats(): AdapterStats {
    return { unsent: this.#unsent };
  }

  /** A stream per channel in Redis (`RedisHistory`); a say Redis did not take is counted in `unsent`. */
  history(settings: HistorySettings, channels: Channels<ClientMeta>): HistoryStore {
    return new RedisHistory(this.#connections, settings, channels, () => this.#unsent++);
  }

  /** Every node's entries in Redis, with their diffs on Redis channels (`RedisPresence`). */
  presence<E>(parts: PresenceParts<E>): PresenceStore<E> {
    return new RedisPresence(parts, this.#connections, this.node);
  }
  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.broker.on(event, listener);
    return this;
  }

  async close(): Promise<void> {
    await this.#ids.close();
    const { subscriber } = this.#connections;
    subscriber.off("ready", this.#listen).off("messageBuffer", this.#onMessage);
    if (subscriber.status === "ready") await subscriber.unsubscribe(this.#name).catch(() => undefined);
    await this.#connections.close();
  }

  /** The subscriber is (again) ready: subscribe to this node's channel. */
  readonly #listen = (): void => {
    this.#listening = this.#connections.subscriber.subscribe(this.#name).then(
      () => true,
      (error: unknown) => {
        this.#connections.unanswered(error); // dropped or stalled first: the next `ready` subscribes again
        return false;
      },
    );
  };

  readonly #onMessage = (name: Buffer, message: Buffer): void => {
    if (name.equals(this.#nameBytes)) this.#receive?.(message.toString("utf8"));
  };
}
