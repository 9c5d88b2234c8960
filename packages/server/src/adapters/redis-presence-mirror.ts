import type { Channels, Member } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";

/** The longest a listen waits for the diffs its snapshot was read after (lost with the subscriber's connection). */
const REACH_MS = 2000;
/** One diff as a script of redis-presence-scripts.ts publishes it (cjson writes an empty list as `{}`). */
export type PresenceDiff = { v: number; j: [string, string][] | object; l: string[] | object };

/**
 * One channel listened to on Redis, mirrored in a `Channels` of stand-ins (the members on every
 * node): diffs are buffered until the snapshot is in, then only those numbered above the mirror's
 * version are applied, so the mirror moves through exactly the states Redis went through.
 */
export class MirroredChannel {
  readonly #mirror: Channels<ClientMeta>;
  readonly #channel: string;
  /** The stand-ins by key, once the snapshot is in. */
  #stands: Map<string, Member> | undefined;
  #buffered: PresenceDiff[] = [];
  #version = 0;
  /** Listens waiting for the mirror to reach a version. */
  #waiting: [version: number, resolve: () => void][] = [];
  /** Listens on their way: the channel is not dropped meanwhile. */
  pending = 0;

  constructor(mirror: Channels<ClientMeta>, channel: string) {
    this.#mirror = mirror;
    this.#channel = channel;
  }

  get filled(): boolean {
    return this.#stands !== undefined;
  }

  /** Starts from a snapshot `[key, entry JSON, ...]` at `version`, then applies the diffs buffered meanwhile. */
  fill(version: number, all: readonly string[]): void {
    this.#stands = new Map();
    this.#version = version;
    for (let i = 0; i < all.length; i += 2) this.#join(all[i] as string, all[i + 1] as string);
    for (const diff of this.#buffered.splice(0)) this.apply(diff);
  }

  /** Applies one diff numbered above the mirror's version (buffers it before the snapshot). */
  apply(diff: PresenceDiff): void {
    const stands = this.#stands;
    if (stands === undefined) return void this.#buffered.push(diff);
    if (diff.v <= this.#version) return;
    this.#version = diff.v;
    for (const key of Array.isArray(diff.l) ? (diff.l as string[]) : []) {
      const stand = stands.get(key);
      if (stand === undefined) continue;
      stands.delete(key);
      this.#mirror.leave(this.#channel, stand);
    }
    for (const [key, value] of Array.isArray(diff.j) ? (diff.j as [string, string][]) : []) this.#join(key, value);
    for (const [version, resolve] of this.#waiting) if (version <= diff.v) resolve();
    this.#waiting = this.#waiting.filter(([version]) => version > diff.v);
  }

  /** Resolves once the mirror has applied the diffs up to `version` (at once if it has), or after REACH_MS. */
  reached(version: number): Promise<void> {
    if (this.#version >= version) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, REACH_MS);
      this.#waiting.push([
        version,
        () => {
          clearTimeout(timer);
          resolve();
        },
      ]);
    });
  }

  /** Empties the mirror of this channel and lets every waiting listen go on. */
  clear(): void {
    for (const stand of this.#stands?.values() ?? []) this.#mirror.leave(this.#channel, stand);
    this.#stands = undefined;
    for (const [, resolve] of this.#waiting.splice(0)) resolve();
  }

  #join(key: string, value: string): void {
    const stand = { send: () => undefined }; // a stand-in: the mirror's members are never written to
    this.#stands?.set(key, stand);
    this.#mirror.join(this.#channel, stand, (JSON.parse(value) as { m: ClientMeta }).m);
  }
}
