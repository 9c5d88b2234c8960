import type { Redis } from "ioredis";
import type { Channels } from "ws-channels";
import type { RedisConnections } from "ws-channels/redis";
import type { ClientMeta } from "../client-meta.js";
import { MirroredChannel, type PresenceDiff, type Snapshot } from "./redis-presence-mirror.js";
import type { PresenceScripts } from "./redis-presence-scripts.js";

/**
 * The channels a node listens to on Redis (by the Redis channel their diffs come on), each
 * mirrored in a `Channels` of stand-ins: subscribed first, then filled from a snapshot, then moved
 * by the diffs numbered above it. `refill` does it again for every one, after Redis was unreachable.
 */
export class RedisMirrors {
  readonly #connections: RedisConnections;
  readonly #redis: Redis & PresenceScripts;
  readonly #mirror: Channels<ClientMeta>;
  readonly #node: string;
  /** This node's own members of a channel now: key -> meta. */
  readonly #own: (channel: string) => Map<string, ClientMeta>;
  readonly #byName = new Map<string, MirroredChannel>();

  constructor(
    connections: RedisConnections,
    mirror: Channels<ClientMeta>,
    node: string,
    own: (channel: string) => Map<string, ClientMeta>,
  ) {
    this.#connections = connections;
    this.#redis = connections.commands as Redis & PresenceScripts;
    this.#mirror = mirror;
    this.#node = node;
    this.#own = own;
    connections.subscriber.on("message", this.#onMessage);
  }

  get size(): number {
    return this.#byName.size;
  }

  /** The channels mirrored. */
  channels(): string[] {
    return [...this.#byName.values()].map((listened) => listened.channel);
  }

  /** Whether every mirror filled so far was filled from a snapshot the last time (none from Redis as last seen). */
  whole(): boolean {
    return [...this.#byName.values()].every((listened) => listened.whole);
  }

  /** Mirrors `channel` (subscribes and fills it the first time) and waits until it is filled. */
  async open(channel: string): Promise<void> {
    const name = this.#connections.name("pd", channel);
    let listened = this.#byName.get(name);
    if (listened === undefined) {
      listened = new MirroredChannel(this.#mirror, channel, this.#node);
      this.#byName.set(name, listened);
    }
    const opened = listened;
    opened.pending++;
    try {
      opened.filling ??= this.#fetch(channel, name).then((snapshot) => {
        if (this.#byName.get(name) === opened) opened.fill(this.#own(channel), snapshot);
      });
      await opened.filling;
    } finally {
      opened.pending--;
    }
  }

  /** One of this node's own joins (`meta` given) or leaves in `channel`. */
  own(channel: string, key: string, joined: boolean, meta: ClientMeta): void {
    this.#byName.get(this.#connections.name("pd", channel))?.own(key, joined, meta);
  }

  /** Stops mirroring `channel` once this node has no member there (`members`) and no listen is on its way. */
  drop(channel: string, members: number): void {
    const name = this.#connections.name("pd", channel);
    const listened = this.#byName.get(name);
    if (listened === undefined || listened.pending > 0 || members > 0) return;
    this.#byName.delete(name);
    listened.clear();
    this.#connections.subscriber.unsubscribe(name).catch(() => undefined);
  }

  /**
   * Subscribes to every mirrored channel again and takes fresh snapshots (diffs are held
   * meanwhile), then, once every one is in, fills each mirror from its snapshot in one step.
   * @returns whether every snapshot came (a mirror without one goes on as it was).
   */
  async refill(): Promise<boolean> {
    const all = [...this.#byName];
    for (const [, listened] of all) listened.hold();
    const snapshots = await Promise.all(all.map(([name, listened]) => this.#fetch(listened.channel, name)));
    for (const [i, [name, listened]] of all.entries())
      if (this.#byName.get(name) === listened) listened.fill(this.#own(listened.channel), snapshots[i]);
    return !snapshots.includes(undefined);
  }

  /** Stops mirroring every channel. */
  async close(): Promise<void> {
    this.#connections.subscriber.off("message", this.#onMessage);
    const names = [...this.#byName.keys()];
    for (const listened of this.#byName.values()) listened.clear();
    this.#byName.clear();
    if (names.length > 0 && this.#connections.subscriber.status === "ready")
      await this.#connections.subscriber.unsubscribe(...names).catch(() => undefined);
  }

  /** Subscribes to `channel`'s diffs, then reads its snapshot. @returns undefined if Redis cannot be reached. */
  async #fetch(channel: string, name: string): Promise<Snapshot | undefined> {
    try {
      await this.#connections.subscriber.subscribe(name);
      const named = (kind: string): string => this.#connections.name(kind, channel);
      const [version, ...all] = await this.#redis.wsPresenceSnapshot(named("p"), named("pv"));
      return { version: Number(version ?? 0), all };
    } catch (error) {
      this.#connections.unanswered(error); // this node's own presence goes on meanwhile
      return undefined;
    }
  }

  readonly #onMessage = (name: string, message: string): void => {
    this.#byName.get(name)?.apply(JSON.parse(message) as PresenceDiff);
  };
}
