import type { Channels, Member } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";

/** One diff as a script of redis-presence-scripts.ts publishes it (cjson writes an empty list as `{}`). */
export type PresenceDiff = { v: number; n: string; j: [string, string][] | object; l: string[] | object };

/** A channel's entries in Redis as the snapshot script reads them: its version and `[key, entry JSON, ...]`. */
export interface Snapshot {
  version: number;
  all: readonly string[];
}

/**
 * One channel listened to on Redis, mirrored in a `Channels` of stand-ins (the members on every
 * node). This node's own members are mirrored from its `Channels`, as they change, so its own
 * presence goes on without Redis; the other nodes' from Redis: diffs are held until the
 * snapshot is in, then only those numbered above its version are applied, so that part moves
 * through exactly the states Redis went through. This node's own diffs only move the version.
 */
export class MirroredChannel {
  readonly #mirror: Channels<ClientMeta>;
  readonly channel: string;
  readonly #node: string;
  /** The stand-ins by key, once first filled. */
  #stands: Map<string, Member> | undefined;
  /** Whether diffs are held until the next fill (before the first, and while a refill is on its way). */
  #holding = true;
  #held: PresenceDiff[] = [];
  #version = 0;
  /** False once filled without a snapshot (Redis unreachable), until filled with one. */
  whole = true;
  /** Listens on their way: the channel is not dropped meanwhile. */
  pending = 0;
  /** The first listen's subscription and snapshot, which the others wait for. */
  filling: Promise<void> | undefined;

  constructor(mirror: Channels<ClientMeta>, channel: string, node: string) {
    this.#mirror = mirror;
    this.channel = channel;
    this.#node = node;
  }

  /** Holds the diffs that come from now until the next fill. */
  hold(): void {
    this.#holding = true;
  }

  /**
   * Makes the mirror this node's members now (`own`: key -> meta) and the other nodes' in
   * `snapshot` (without one, Redis unreachable: theirs as last seen), with one join or leave per
   * difference, then applies the diffs held meanwhile.
   */
  fill(own: Map<string, ClientMeta>, snapshot: Snapshot | undefined): void {
    const stands = this.#stands ?? new Map<string, Member>();
    this.#stands = stands;
    const wanted = new Map(own);
    this.whole = snapshot !== undefined;
    if (snapshot !== undefined) {
      this.#version = snapshot.version; // set, not raised: a Redis that lost its data counts from 0 again
      for (let i = 0; i < snapshot.all.length; i += 2) {
        const { n, m } = JSON.parse(snapshot.all[i + 1] as string) as { n: string; m: ClientMeta };
        if (n !== this.#node) wanted.set(snapshot.all[i] as string, m);
      }
      for (const key of [...stands.keys()]) if (!wanted.has(key)) this.#leave(key);
    }
    for (const [key, meta] of wanted) this.#join(key, meta);
    this.#holding = false;
    for (const diff of this.#held.splice(0)) this.apply(diff);
  }

  /** One of this node's own joins (`meta` given) or leaves, once filled. */
  own(key: string, joined: boolean, meta: ClientMeta): void {
    if (this.#stands === undefined) return; // the fill reads this node's members when it comes
    if (joined) this.#join(key, meta);
    else this.#leave(key);
  }

  /** Applies one diff numbered above the mirror's version (holds it until the next fill). */
  apply(diff: PresenceDiff): void {
    if (this.#holding) return void this.#held.push(diff);
    if (diff.v <= this.#version) return;
    this.#version = diff.v;
    if (diff.n === this.#node) return; // mirrored from this node's `Channels` already
    for (const key of Array.isArray(diff.l) ? (diff.l as string[]) : []) this.#leave(key);
    for (const [key, value] of Array.isArray(diff.j) ? (diff.j as [string, string][]) : [])
      this.#join(key, (JSON.parse(value) as { m: ClientMeta }).m);
  }

  /** Empties the mirror of this channel. */
  clear(): void {
    for (const stand of this.#stands?.values() ?? []) this.#mirror.leave(this.channel, stand);
    this.#stands = undefined;
  }

  #join(key: string, meta: ClientMeta): void {
    if (this.#stands === undefined || this.#stands.has(key)) return;
    const stand = { send: () => undefined }; // a stand-in: the mirror's members are never written to
    this.#stands.set(key, stand);
    this.#mirror.join(this.channel, stand, meta);
  }

  #leave(key: string): void {
    const stand = this.#stands?.get(key);
    if (stand === undefined) return;
    this.#stands?.delete(key);
    this.#mirror.leave(this.channel, stand);
  }
}
