import type { Redis } from "ioredis";
import { Channels, type Member, type Presence, type PresenceMode, type PresenceSnapshot } from "ws-channels";
import type { RedisConnections } from "ws-channels/redis";
import type { ClientMeta } from "../client-meta.js";
import type { NodeAddress } from "./adapter.js";
import { MembershipKeys, ownEntries, type PresenceParts, type PresenceStore } from "./presence.js";
import { MirroredChannel, type PresenceDiff } from "./redis-presence-mirror.js";
import { BEAT, BEAT_MS, CHANGE, LEAVE_ALL, type PresenceScripts, SNAPSHOT } from "./redis-presence-scripts.js";

/**
 * Presence of servers sharing one Redis (redis-presence-scripts.ts has the layout): each node
 * writes its memberships' entries, gathered per turn, with one script per channel that also
 * publishes the diff. A listened channel is mirrored, as on cluster workers, in a `Channels` of
 * stand-ins under the server's own `Presence`, which builds the frames once and fans them out:
 * subscribed first, then filled from a snapshot, then moved by the diffs numbered above it; this
 * node's own members are mirrored from its `Channels` directly (redis-presence-mirror.ts), so a
 * listener's snapshot holds its own join. Closing removes every entry of this node, with leaves.
 */
export class RedisPresence<E> implements PresenceStore<E> {
  readonly #parts: PresenceParts<E>;
  readonly #connections: RedisConnections;
  readonly #redis: Redis & PresenceScripts;
  readonly #node: NodeAddress;
  readonly #mirror = new Channels<ClientMeta>();
  readonly #presence: Presence<ClientMeta, Member, E>;
  /** By the Redis channel its diffs come on. */
  readonly #listened = new Map<string, MirroredChannel>();
  readonly #keys: MembershipKeys;
  readonly #stop: () => void;
  readonly #beating: NodeJS.Timeout;
  #ops = new Map<string, string[]>();
  #immediate: NodeJS.Immediate | undefined;

  constructor(parts: PresenceParts<E>, connections: RedisConnections, node: NodeAddress) {
    this.#parts = parts;
    this.#connections = connections;
    this.#node = node;
    this.#keys = new MembershipKeys(node);
    this.#presence = parts.local(this.#mirror);
    this.#redis = connections.commands as Redis & PresenceScripts;
    this.#redis.defineCommand("wsPresenceChange", { numberOfKeys: 6, lua: CHANGE });
    this.#redis.defineCommand("wsPresenceSnapshot", { numberOfKeys: 2, lua: SNAPSHOT });
    this.#redis.defineCommand("wsPresenceLeaveAll", { numberOfKeys: 3, lua: LEAVE_ALL });
    this.#redis.defineCommand("wsPresenceBeat", { numberOfKeys: 3, lua: BEAT });
    this.#beat();
    this.#beating = setInterval(this.#beat, BEAT_MS).unref();
    connections.subscriber.on("message", this.#onMessage);
    this.#stop = parts.channels.observe((channel, member, meta, cause) => {
      const key = this.#keys.of(member, meta);
      const ops = this.#ops.get(String(channel)) ?? [];
      this.#ops.set(String(channel), ops);
      ops.push(key, cause === "join" ? JSON.stringify({ n: node, m: meta }) : "");
      this.#listened.get(connections.name("pd", channel))?.own(key, cause === "join", meta);
      this.#immediate ??= setImmediate(this.#flush);
      if (cause !== "join") this.#drop(String(channel));
    });
  }

  async listen(
    channel: string,
    member: Member,
    mode: PresenceMode,
    reply: (snapshot: PresenceSnapshot<E>) => string | Uint8Array,
  ): Promise<PresenceSnapshot<E> | undefined> {
    const name = this.#connections.name("pd", channel);
    let listened = this.#listened.get(name);
    if (listened === undefined) {
      listened = new MirroredChannel(this.#mirror, channel, this.#node);
      this.#listened.set(name, listened);
    }
    listened.pending++;
    try {
      listened.filling ??= this.#fill(channel, name, listened);
      await listened.filling;
    } finally {
      listened.pending--;
    }
    try {
      return await this.#presence.listen(channel, member, mode, reply);
    } finally {
      this.#drop(channel);
    }
  }

  unlisten(channel: string, member: Member): boolean {
    return this.#presence.unlisten(channel, member);
  }

  async entries(channel: string): Promise<E[]> {
    void this.#flush(); // this node's changes so far are written before the read
    try {
      const [, ...all] = await this.#redis.wsPresenceSnapshot(this.#connections.name("p", channel), this.#connections.name("pv", channel));
      const entries: E[] = [];
      for (let i = 1; i < all.length; i += 2) entries.push(this.#parts.entry((JSON.parse(all[i] as string) as { m: ClientMeta }).m));
      return entries;
    } catch {
      return ownEntries(this.#parts, channel);
    }
  }

  async close(): Promise<void> {
    this.#stop();
    clearInterval(this.#beating);
    this.#connections.subscriber.off("message", this.#onMessage);
    const written = this.#flush();
    clearImmediate(this.#immediate);
    const left = this.#redis.wsPresenceLeaveAll(...this.#nodeKeys(), this.#node, this.#connections.prefix);
    await Promise.all([written, left]).catch(this.#connections.unanswered);
    const names = [...this.#listened.keys()];
    for (const listened of this.#listened.values()) listened.clear();
    this.#listened.clear();
    if (names.length > 0 && this.#connections.subscriber.status === "ready")
      await this.#connections.subscriber.unsubscribe(...names).catch(() => undefined);
    await this.#presence.close();
    await this.#mirror.close();
  }

  /** Writes this turn's joins and leaves, one script per channel, in order on the one connection. */
  readonly #flush = (): Promise<unknown> => {
    this.#immediate = undefined;
    const ops = this.#ops;
    this.#ops = new Map();
    const written: Promise<unknown>[] = [];
    for (const [channel, list] of ops) {
      const name = (kind: string): string => this.#connections.name(kind, kind === "pn" ? this.#node : channel);
      const keys = [name("p"), name("pv"), name("pn"), name("pd"), ...this.#nodeKeys().slice(0, 2)];
      written.push(this.#redis.wsPresenceChange(...keys, this.#node, channel, ...list).catch(this.#connections.unanswered));
    }
    return Promise.all(written);
  };

  /** Subscribes to `channel`'s diffs, then fills its mirror from a snapshot and this node's members. */
  async #fill(channel: string, name: string, listened: MirroredChannel): Promise<void> {
    let snapshot: string[] = [];
    try {
      await this.#connections.subscriber.subscribe(name);
      const named = (kind: string): string => this.#connections.name(kind, channel);
      snapshot = await this.#redis.wsPresenceSnapshot(named("p"), named("pv"));
    } catch (error) {
      this.#connections.unanswered(error); // Redis down: this node's own presence goes on
    }
    const own = this.#parts.channels.reduce(channel, new Map<string, ClientMeta>(), (keys, { member, meta }) =>
      keys.set(this.#keys.of(member, meta), meta),
    );
    listened.fill(own, Number(snapshot[0] ?? 0), snapshot.slice(1));
  }

  /** Stops listening to `channel` once this node has no member in it and no listen is on its way. */
  #drop(channel: string): void {
    const name = this.#connections.name("pd", channel);
    const listened = this.#listened.get(name);
    if (listened === undefined || listened.pending > 0 || this.#parts.channels.count(channel) > 0) return;
    this.#listened.delete(name);
    listened.clear();
    this.#connections.subscriber.unsubscribe(name).catch(() => undefined);
  }

  readonly #onMessage = (name: string, message: string): void => {
    this.#listened.get(name)?.apply(JSON.parse(message) as PresenceDiff);
  };

  /** Beats and, holding the lease, removes the entries of nodes that stopped beating, with leaves. */
  readonly #beat = (): void => {
    this.#redis.wsPresenceBeat(...this.#nodeKeys(), this.#node, this.#connections.prefix).catch(this.#connections.unanswered);
  };

  /** This node's beat, the set of nodes with presence, the reaper's lease. */
  #nodeKeys(): [string, string, string] {
    const { prefix } = this.#connections;
    return [this.#connections.name("pb", this.#node), `${prefix}:pnodes`, `${prefix}:preaper`];
  }
}
