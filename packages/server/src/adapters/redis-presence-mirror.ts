import type { Channels, Member } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";

/** One diff as a script of redis-presence-scripts.ts publishes it (cjson writes an empty list as `{}`). */
export type PresenceDiff = { v: number; n: string; j: [string, string][] | object; l: string[] | object };

/**
 * One channel listened to on Redis, mirrored in a `Channels` of stand-ins (the members on every
 * node). This node's own members are mirrored from its `Channels`, as they change, so its own
 * presence goes on without Redis; the other nodes' from Redis: diffs are buffered until the
 * snapshot is in, then only those numbered above its version are applied, so that part moves
 * through exactly the states Redis went through. This node's own diffs only move the version.
 */
export class MirroredChannel {
  readonly #mirror: Channels<ClientMeta>;
  readonly #channel: string;
  readonly #node: string;
  /** The stand-ins by key, once the snapshot is in. */
  #stands: Map<string, Member> | undefined;
  #buffered: PresenceDiff[] = [];
  #version = 0;
  /** Listens on their way: the channel is not dropped meanwhile. */
  pending = 0;
  /** The first listen's subscription and snapshot, which the others wait for. */
  filling: Promise<void> | undefined;

  constructor(mirror: Channels<ClientMeta>, channel: string, node: string) {
    this.#mirror = mirror;
    this.#channel = channel;
    this.#node = node;
  }

  get filled(): boolean {
    return this.#stands !== undefined;
  }

  /**
   * Starts from this node's members now (`own`: key -> meta) and the other nodes' in a snapshot
   * `[key, entry JSON, ...]` at `version`, then applies the diffs buffered meanwhile.
   */
  fill(own: Map<string, ClientMeta>, version: number, all: readonly string[]): void {
    this.#stands = new Map();
    this.#version = version;
    for (const [key, meta] of own) this.#join(key, meta);
    for (let i = 0; i < all.length; i += 2) {
      const { n, m } = JSON.parse(all[i + 1] as string) as { n: string; m: ClientMeta };
      if (n !== this.#node) this.#join(all[i] as string, m);
    }
    for (const diff of this.#buffered.splice(0)) this.apply(diff);
  }

  /** One of this node's own joins (`meta` given) or leaves, once filled. */
  own(key: string, joined: boolean, meta: ClientMeta): void {
    if (this.#stands === undefined) return; // the fill reads this node's members when it comes
    if (joined) this.#join(key, meta);
    else this.#leave(key);
  }

  /** Applies one diff numbered above the mirror's version (buffers it before the snapshot). */
  apply(diff: PresenceDiff): void {
    const stands = this.#stands;
    if (stands === undefined) return void this.#buffered.push(diff);
    if (diff.v <= this.#version) return;
    this.#version = diff.v;
    if (diff.n === this.#node) return; // mirrored from this node's `Channels` already
    for (const key of Array.isArray(diff.l) ? (diff.l as string[]) : []) this.#leave(key);
    for (const [key, value] of Array.isArray(diff.j) ? (diff.j as [string, string][]) : [])
      this.#join(key, (JSON.parse(value) as { m: ClientMeta }).m);
  }

  /** Empties the mirror of this channel. */
  clear(): void {
    for (const stand of this.#stands?.values() ?? []) this.#mirror.leave(this.#channel, stand);
    this.#stands = undefined;
  }

  #join(key: string, meta: ClientMeta): void {
    const stand = { send: () => undefined }; // a stand-in: the mirror's members are never written to
    this.#stands?.set(key, stand);
    this.#mirror.join(this.#channel, stand, meta);
  }

  #leave(key: string): void {
    const stand = this.#stands?.get(key);
    if (stand === undefined) return;
    this.#stands?.delete(key);
    this.#mirror.leave(this.#channel, stand);
  }
}
