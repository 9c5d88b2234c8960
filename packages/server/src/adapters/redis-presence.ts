import type { Redis } from "ioredis";
import { Channels, type Member, type Presence, type PresenceMode, type PresenceSnapshot } from "ws-channels";
import type { RedisConnections } from "ws-channels/redis";
import type { ClientMeta } from "../client-meta.js";
import type { NodeAddress } from "./adapter.js";
import { MembershipKeys, ownEntries, type PresenceParts, type PresenceStore, type StoreEntries, type StoreSnapshot } from "./presence.js";
import { RedisMirrors } from "./redis-presence-mirrors.js";
import { BEAT, BEAT_MS, CHANGE, LEAVE_ALL, type PresenceScripts, SNAPSHOT } from "./redis-presence-scripts.js";

/**
 * Presence of servers sharing one Redis (redis-presence-scripts.ts has the layout): each node
 * writes its entries, gathered per turn, with one script per channel that publishes the diff. A
 * listened channel is mirrored in a `Channels` of stand-ins under the server's own `Presence`
 * (redis-presence-mirrors.ts), this node's own members straight from its `Channels`, so its
 * presence goes on without Redis; meanwhile snapshots and reads say `partial`. Once both
 * connections are ready again, or a beat finds this node reaped (paused past the beat's TTL), it
 * recovers: writes its whole presence again (publishing only what Redis was missing), refills its
 * mirrors and gives its listeners a fresh start. Closing removes its entries, with leaves.
 */
export class RedisPresence<E> implements PresenceStore<E> {
  readonly #parts: PresenceParts<E>;
  readonly #connections: RedisConnections;
  readonly #redis: Redis & PresenceScripts;
  readonly #node: NodeAddress;
  readonly #mirror = new Channels<ClientMeta>();
  readonly #presence: Presence<ClientMeta, Member, E>;
  readonly #mirrors: RedisMirrors;
  readonly #keys: MembershipKeys;
  readonly #stop: () => void;
  readonly #beating: NodeJS.Timeout;
  readonly #own = new Set<string>(); // the channels this node has members in
  #ops = new Map<string, string[]>();
  #immediate: NodeJS.Immediate | undefined;
  /** Whether this node's entries are in Redis and its mirrors up to date since Redis was last unreachable. */
  #whole = false;
  /** Moves on at each drop or reap: a recovery that started before one does not make the view whole. */
  #generation = 0;
  #recovering = false;
  /** Whether this node has ever sent a write (so Redis may hold entries of it to remove). */
  #wrote = false;

  constructor(parts: PresenceParts<E>, connections: RedisConnections, node: NodeAddress) {
    this.#parts = parts;
    this.#connections = connections;
    this.#node = node;
    this.#keys = new MembershipKeys(node);
    this.#presence = parts.local(this.#mirror, () => !this.#whole);
    this.#redis = connections.commands as Redis & PresenceScripts;
    this.#redis.defineCommand("wsPresenceChange", { numberOfKeys: 6, lua: CHANGE });
    this.#redis.defineCommand("wsPresenceSnapshot", { numberOfKeys: 2, lua: SNAPSHOT });
    this.#redis.defineCommand("wsPresenceLeaveAll", { numberOfKeys: 3, lua: LEAVE_ALL });
    this.#redis.defineCommand("wsPresenceBeat", { numberOfKeys: 3, lua: BEAT });
    this.#mirrors = new RedisMirrors(connections, this.#mirror, node, (channel) => this.#ownOf(channel));
    for (const connection of [connections.commands, connections.subscriber]) connection.on("close", this.#down).on("ready", this.#up);
    this.#beating = setInterval(this.#beat, BEAT_MS).unref();
    this.#up();
    this.#stop = parts.channels.observe((id, member, meta, cause) => {
      const channel = String(id);
      const key = this.#keys.of(member, meta);
      const ops = this.#ops.get(channel) ?? [];
      this.#ops.set(channel, ops);
      ops.push(key, cause === "join" ? JSON.stringify({ n: node, m: meta }) : "");
      this.#mirrors.own(channel, key, cause === "join", meta);
      this.#immediate ??= setImmediate(this.#flush);
      if (cause === "join") return void this.#own.add(channel);
      const members = parts.channels.count(channel);
      if (members === 0) this.#own.delete(channel);
      this.#mirrors.drop(channel, members);
    });
  }

  async listen(
    channel: string,
    member: Member,
    mode: PresenceMode,
    reply: (snapshot: StoreSnapshot<E>) => string | Uint8Array,
  ): Promise<PresenceSnapshot<E> | undefined> {
    await this.#mirrors.open(channel);
    try {
      const marked = (snapshot: PresenceSnapshot<E>) => reply(this.#whole ? snapshot : { ...snapshot, partial: true });
      return await this.#presence.listen(channel, member, mode, marked); // read with its snapshot: a partial one is refreshed
    } finally {
      this.#mirrors.drop(channel, this.#parts.channels.count(channel));
    }
  }

  unlisten(channel: string, member: Member): boolean {
    return this.#presence.unlisten(channel, member);
  }

  async entries(channel: string): Promise<StoreEntries<E>> {
    void this.#flush(); // this node's changes so far are written before the read
    try {
      const [, ...all] = await this.#redis.wsPresenceSnapshot(this.#connections.name("p", channel), this.#connections.name("pv", channel));
      const entries: E[] = [];
      for (let i = 1; i < all.length; i += 2) entries.push(this.#parts.entry((JSON.parse(all[i] as string) as { m: ClientMeta }).m));
      return this.#whole ? { entries } : { entries, partial: true };
    } catch {
      return { entries: ownEntries(this.#parts, channel), partial: true };
    }
  }

  async close(): Promise<void> {
    this.#stop();
    this.#generation++;
    clearInterval(this.#beating);
    for (const connection of [this.#connections.commands, this.#connections.subscriber])
      connection.off("close", this.#down).off("ready", this.#up);
    const written = this.#flush();
    clearImmediate(this.#immediate);
    const left = this.#redis.wsPresenceLeaveAll(...this.#nodeArgs());
    await Promise.all([written, left]).catch(this.#connections.unanswered);
    await this.#mirrors.close();
    await this.#presence.close();
    await this.#mirror.close();
  }

  /** Writes this turn's joins and leaves, one script per channel, in order on the one connection. */
  readonly #flush = (): Promise<unknown> => {
    this.#immediate = undefined;
    const ops = this.#ops;
    this.#ops = new Map();
    return Promise.all([...ops].map(([channel, list]) => this.#write(channel, false, list)));
  };

  /** Runs the change script on `channel` (`rewrite`: `ops` are all of this node's entries there); a gone beat starts a recovery. */
  #write(channel: string, rewrite: boolean, ops: string[]): Promise<unknown> {
    this.#wrote = true;
    const name = (kind: string): string => this.#connections.name(kind, kind === "pn" ? this.#node : channel);
    const keys = [name("p"), name("pv"), name("pn"), name("pd"), ...this.#nodeArgs().slice(0, 2)];
    return this.#redis.wsPresenceChange(...keys, this.#node, channel, rewrite ? "1" : "0", ...ops).then((version) => {
      if (version === -1 && !rewrite) this.#lost();
    }, this.#connections.unanswered);
  }

  /** This node's members of `channel` now: key -> meta. */
  #ownOf(channel: string): Map<string, ClientMeta> {
    return this.#parts.channels.reduce(channel, new Map(), (keys, { member, meta }) => keys.set(this.#keys.of(member, meta), meta));
  }

  readonly #down = (): void => {
    this.#generation++;
    this.#whole = false;
  };

  /** A connection is ready: once both are, recover. */
  readonly #up = (): void => {
    const { commands, subscriber } = this.#connections;
    if (commands.status === "ready" && subscriber.status === "ready") this.#recover();
  };

  /** This node's entries may be gone from Redis (it was reaped): recover. */
  #lost(): void {
    this.#down();
    this.#recover();
  }

  /** Beats, writes this node's whole presence again, refills the mirrors; whole if nothing dropped meanwhile, then a fresh start for the listeners. */
  #recover(): void {
    if (this.#recovering) return; // the one under way sees the generation move and starts again
    const generation = this.#generation;
    if (!this.#wrote && this.#own.size === 0 && this.#mirrors.size === 0) {
      this.#whole = true; // nothing of this node in Redis, nothing mirrored: whole at once
      return void this.#redis.wsPresenceBeat(...this.#nodeArgs()).catch(this.#connections.unanswered);
    }
    this.#recovering = true;
    const recovered = async (): Promise<void> => {
      await this.#redis.wsPresenceBeat(...this.#nodeArgs());
      const channels = new Set([...(await this.#redis.smembers(this.#connections.name("pn", this.#node))), ...this.#own]);
      const ops = (channel: string): string[] =>
        [...this.#ownOf(channel)].flatMap(([key, m]) => [key, JSON.stringify({ n: this.#node, m })]);
      await Promise.all([...channels].map((channel) => this.#write(channel, true, ops(channel))));
      const refilled = await this.#mirrors.refill();
      if (!refilled || !this.#mirrors.whole() || generation !== this.#generation) return;
      this.#whole = true;
      for (const channel of this.#mirrors.channels()) this.#presence.refresh(channel);
    };
    recovered()
      .catch(this.#connections.unanswered)
      .finally(() => {
        this.#recovering = false;
        if (generation !== this.#generation) this.#up();
      });
  }

  /** Beats and, holding the lease, removes the entries of nodes that stopped beating, with leaves; not whole, recovers again. */
  readonly #beat = (): void => {
    if (!this.#whole && !this.#recovering) this.#up(); // tried again at each beat until whole
    if (this.#recovering || this.#connections.commands.status !== "ready") return;
    this.#redis
      .wsPresenceBeat(...this.#nodeArgs())
      .then(([, alive]) => alive === 0 && this.#whole && this.#lost(), this.#connections.unanswered);
  };

  /** The beat's and leave-all's keys (this node's beat, the set of nodes with presence, the reaper's lease), node and prefix. */
  #nodeArgs(): [string, string, string, string, string] {
    const { prefix } = this.#connections;
    return [this.#connections.name("pb", this.#node), `${prefix}:pnodes`, `${prefix}:preaper`, this.#node, prefix];
  }
}
