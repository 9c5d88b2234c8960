import { randomBytes } from "node:crypto";
import type { Broker, BrokerEvents, Channels } from "ws-channels";
import { RedisBroker, RedisConnections } from "ws-channels/redis";
import type { ClientMeta } from "../client-meta.js";
import type { HistorySettings } from "../history.js";
import { emitted } from "../wait.js";
import { type Adapter, type AdapterStats, brokerUp, type NodeAddress, START_WAIT_MS } from "./adapter.js";
import { Gathering } from "./gather.js";
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
  /** Where every node's questions go (`PREFIX:ask:all`), and the answers to this node's (`PREFIX:answer:ADDRESS`). */
  readonly #askName: string;
  readonly #answerName: string;
  readonly #gathering = new Gathering();
  #answer: ((question: string) => Promise<string>) | undefined;
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
    this.#askName = this.#connections.name("ask", "all");
    this.#answerName = this.#connections.name("answer", this.node);
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

  /**
   * Publishes `question` on `PREFIX:ask:all`, which every node subscribes to: PUBLISH tells how many
   * subscribers got it, so the wait ends once every other one answered (on this node's answer channel).
   */
  ask(question: string): Promise<string[]> {
    const { commands } = this.#connections;
    if (commands.status !== "ready") return Promise.resolve([]); // no offline queue
    return this.#gathering.ask(async (request) => {
      const asked = JSON.stringify({ from: this.node, request, question });
      return (await commands.publish(this.#askName, asked)) - 1; // this node's subscriber got it too
    });
  }

  onQuestion(listener: (question: string) => Promise<string>): void {
    this.#answer = listener;
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
    return new RedisHistory(this.#connections, settings, channels, () => {
      this.#unsent++;
    });
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
    this.#gathering.close();
    await this.#ids.close();
    const { subscriber } = this.#connections;
    subscriber.off("ready", this.#listen).off("messageBuffer", this.#onMessage);
    const names = [this.#name, this.#askName, this.#answerName];
    if (subscriber.status === "ready") await subscriber.unsubscribe(...names).catch(() => undefined);
    await this.#connections.close();
  }

  /** The subscriber is (again) ready: subscribe to this node's channel. */
  readonly #listen = (): void => {
    this.#listening = this.#connections.subscriber.subscribe(this.#name, this.#askName, this.#answerName).then(
      () => true,
      (error: unknown) => {
        this.#connections.unanswered(error); // dropped or stalled first: the next `ready` subscribes again
        return false;
      },
    );
  };

  readonly #onMessage = (name: Buffer, message: Buffer): void => {
    if (name.equals(this.#nameBytes)) return this.#receive?.(message.toString("utf8"));
    const text = name.toString("utf8");
    if (text === this.#askName) this.#onQuestion(message);
    else if (text === this.#answerName) {
      const { request, answer } = parsed(message, ["request", "answer"]) ?? {};
      if (typeof request === "number" && typeof answer === "string") this.#gathering.answer(request, answer);
    }
  };

  /** Another node's question: answered on its answer channel. Anyone able to write to Redis can publish there: checked. */
  #onQuestion(message: Buffer): void {
    const { from, request, question } = parsed(message, ["from", "request", "question"]) ?? {};
    if (typeof from !== "string" || from === this.node || typeof question !== "string" || typeof request !== "number") return;
    const reply = (answer: string): void => {
      const to = this.#connections.name("answer", from);
      this.#connections.commands.publish(to, JSON.stringify({ request, answer })).catch(this.#connections.unanswered);
    };
    this.#answer?.(question).then(reply, () => undefined); // no answer: the asker's wait ends it
  }
}

/** `message` as a JSON object with `keys`; undefined if it is not one. */
function parsed(message: Buffer, keys: string[]): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(message.toString("utf8")) as unknown;
    if (value === null || typeof value !== "object" || !keys.every((key) => key in value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
