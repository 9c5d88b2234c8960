import type { Redis } from "ioredis";
import type { Channels, HistoryPosition } from "ws-channels";
import type { RedisConnections } from "ws-channels/redis";
import type { ClientMeta } from "../client-meta.js";
import type { HistorySettings, Joined, Kept, Missed } from "../history.js";
import type { HistoryStore } from "./history-store.js";
import { type HistoryScripts, newEpoch, parse, READ, readKept, SAY } from "./redis-history-scripts.js";

/** A delivery's position, at the end of its text: `,"offset":N,"epoch":"E"}`. */
const TAIL = /,"offset":(\d+),"epoch":"([0-9a-f]+)"\}$/;

/** A delivery that arrived while joins of its channel were waiting for Redis. */
interface Arrived {
  readonly offset: number;
  readonly epoch: string;
  readonly text: string;
}

/**
 * A node's history when the servers share one Redis (see redis-history-scripts.ts): a say runs one
 * script that keeps it and publishes its delivery on `PREFIX:history:CH`, so the sayer pays one
 * round trip and every node, this one too, delivers it to its own members when it comes back. A
 * node is subscribed to a channel's deliveries while it has members there (a delivery for a channel
 * with no member and no join under way unsubscribes it).
 *
 * A join subscribes first (acknowledged), reads the position and at most `recoverMax + 1` missed
 * says, then pings the subscriber, so every delivery up to that position has arrived; deliveries
 * past it that arrived meanwhile complete the reply, and the member joins in the same synchronous
 * step. A hole in the offsets or the subscriber coming back after a drop sends `{"resync": CH}` to
 * the channel's members, who join again with `recover`.
 */
export class RedisHistory implements HistoryStore {
  readonly #connections: RedisConnections;
  readonly #commands: Redis & HistoryScripts;
  readonly #settings: HistorySettings;
  readonly #channels: Channels<ClientMeta>;
  readonly #lost: () => void;
  /** Channels subscribed to, by their Redis name, with the position of the last delivery here. */
  readonly #subscribed = new Map<string, { channel: string; last: HistoryPosition | undefined }>();
  /** Per channel with joins waiting for Redis: what arrived meanwhile. */
  readonly #joining = new Map<string, { joins: number; arrived: Arrived[] }>();
  /** Channels whose members get `{"resync": CH}` once both connections are ready again. */
  readonly #toResync = new Set<string>();
  #closed = false;

  /** @param lost called for a say Redis did not take (down, or too slow): counted by the adapter. */
  constructor(connections: RedisConnections, settings: HistorySettings, channels: Channels<ClientMeta>, lost: () => void) {
    this.#connections = connections;
    this.#commands = connections.commands as Redis & HistoryScripts;
    this.#commands.defineCommand("wsHistorySay", { lua: SAY, numberOfKeys: 2 });
    this.#commands.defineCommand("wsHistoryRead", { lua: READ, numberOfKeys: 2 });
    this.#settings = settings;
    this.#channels = channels;
    this.#lost = lost;
    connections.subscriber.on("ready", this.#resubscribe).on("message", this.#onMessage);
    connections.commands.on("ready", this.#flushResync);
  }

  say(channel: string, entry: string): void {
    void this.publish(channel, entry);
  }

  async publish(channel: string, entry: string): Promise<HistoryPosition | undefined> {
    const { size, ttlMs } = this.#settings;
    const args = [
      newEpoch(),
      size,
      Math.ceil(ttlMs / 1000),
      this.#nameOf(channel),
      `{"to":${JSON.stringify(channel)},`,
      entry.slice(1, -1),
    ];
    if (this.#commands.status !== "ready") return void this.#lost(); // no offline queue
    try {
      const [offset, epoch] = await this.#commands.wsHistorySay(...this.#keys(channel), ...args);
      return { epoch, offset };
    } catch (error: unknown) {
      this.#lost();
      this.#connections.unanswered(error);
      return undefined;
    }
  }

  read(channel: string, since: HistoryPosition | undefined, limit: number): Promise<Kept> {
    return readKept(this.#commands, this.#keys(channel), Math.ceil(this.#settings.ttlMs / 1000), since, limit);
  }

  async join(channel: string, recover: HistoryPosition | undefined, commit: (reply: Joined) => Promise<void>): Promise<void> {
    const waiting = this.#joining.get(channel) ?? { joins: 0, arrived: [] };
    waiting.joins++;
    this.#joining.set(channel, waiting);
    const release = (): void => {
      if (--waiting.joins === 0) this.#joining.delete(channel);
    };
    let reply: Joined;
    try {
      reply = await this.#read(channel, recover, waiting.arrived);
    } catch (error: unknown) {
      this.#connections.unanswered(error);
      // Redis unreachable: no position to give; an epoch no recovery matches, and a resync when it is back
      this.#toResync.add(channel);
      reply =
        recover === undefined ? { joined: channel, epoch: "", offset: 0 } : { joined: channel, recovered: false, epoch: "", offset: 0 };
    }
    release();
    if (this.#closed) return;
    return commit(reply); // no await since the read: nothing arrived here goes unseen
  }

  close(): void {
    this.#closed = true;
    const { subscriber } = this.#connections;
    subscriber.off("ready", this.#resubscribe).off("message", this.#onMessage);
    this.#connections.commands.off("ready", this.#flushResync);
    this.#subscribed.clear();
    this.#joining.clear();
  }

  /** Subscribes, reads, then waits for the subscriber to catch up. @returns the reply, with what arrived past the read. */
  async #read(channel: string, recover: HistoryPosition | undefined, arrived: Arrived[]): Promise<Joined> {
    const name = this.#nameOf(channel);
    if (!this.#subscribed.has(name)) this.#subscribed.set(name, { channel, last: undefined });
    await this.#connections.subscriber.subscribe(name);
    const { ttlMs, recoverMax } = this.#settings;
    const from = recover === undefined ? "" : recover.offset + 1;
    const [epoch, top, entries] = await this.#commands.wsHistoryRead(
      ...this.#keys(channel),
      newEpoch(),
      Math.ceil(ttlMs / 1000),
      from,
      recoverMax + 1,
    );
    // a PONG comes after every delivery published before it, so every offset up to `top` is here
    await this.#connections.subscriber.ping();
    const later = arrived.filter((a) => a.epoch === epoch && a.offset > top);
    const latest = later.at(-1)?.offset ?? top;
    if (recover === undefined) return { joined: channel, epoch, offset: latest };
    const missed: Missed[] = entries.map(([id, fields]) => ({ ...parse(fields[1] ?? ""), offset: Number(id.slice(2)) }));
    const start = `{"to":${JSON.stringify(channel)},`.length;
    for (const a of later) missed.push({ ...parse(a.text.slice(start).replace(TAIL, "")), offset: a.offset });
    const contiguous = missed.every((m, i) => m.offset === recover.offset + 1 + i) && (missed.at(-1)?.offset ?? recover.offset) === latest;
    const recovered = recover.epoch === epoch && recover.offset <= top && missed.length <= recoverMax && contiguous;
    if (!recovered) return { joined: channel, recovered: false, epoch, offset: latest };
    return { joined: channel, recovered: true, epoch, offset: latest, missed };
  }

  readonly #onMessage = (name: string, text: string): void => {
    const subscription = this.#subscribed.get(name);
    if (subscription === undefined) return;
    const { channel, last } = subscription;
    const waiting = this.#joining.get(channel);
    if (this.#channels.count(channel) === 0 && waiting === undefined) {
      this.#subscribed.delete(name);
      this.#connections.subscriber.unsubscribe(name).catch(() => undefined); // a drop unsubscribes anyway
      return;
    }
    const tail = TAIL.exec(text);
    if (tail === null) return; // not a delivery: anyone able to write to Redis can publish there
    const position = { offset: Number(tail[1]), epoch: tail[2] as string };
    subscription.last = position;
    waiting?.arrived.push({ ...position, text });
    if (last !== undefined && last.epoch === position.epoch && position.offset !== last.offset + 1) {
      this.#toResync.add(channel); // told once a recovery can read: the commands connection may be down still
      this.#flushResync();
    }
    this.#channels.broadcast(channel, text, { local: true }).catch(() => undefined); // rejected only during shutdown
  };

  /** The subscriber is (again) ready: subscribe to every channel again; what was published meanwhile is lost, so resync. */
  readonly #resubscribe = (): void => {
    const names = [...this.#subscribed.keys()];
    if (names.length === 0) return;
    this.#connections.subscriber.subscribe(...names).then(() => {
      for (const subscription of this.#subscribed.values()) {
        subscription.last = undefined;
        this.#toResync.add(subscription.channel);
      }
      this.#flushResync();
    }, this.#connections.unanswered);
  };

  /** Once both connections are ready (a recovery can read), tells the members of channels that may have lost says. */
  readonly #flushResync = (): void => {
    const { commands, subscriber } = this.#connections;
    if (commands.status !== "ready" || subscriber.status !== "ready") return;
    for (const channel of this.#toResync)
      this.#channels.broadcast(channel, `{"resync":${JSON.stringify(channel)}}`, { local: true }).catch(() => undefined);
    this.#toResync.clear();
  };

  #nameOf(channel: string): string {
    return this.#connections.name("history", channel);
  }

  #keys(channel: string): [string, string] {
    return [this.#connections.name("history-stream", channel), this.#connections.name("history-meta", channel)];
  }
}
