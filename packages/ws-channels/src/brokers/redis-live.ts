import { randomBytes } from "node:crypto";
import type { ChannelId } from "../types.js";
import { compareAscii } from "./ascii.js";
import { PublishHeaders, publishHeader } from "./resp-turn.js";

/** A channel of the live set. */
interface Live {
  readonly channel: ChannelId;
  /** Its Redis name, and its UTF-8 bytes if any unit of it is past ASCII (else its bytes are its units). */
  readonly name: string;
  readonly bytes: Buffer | undefined;
  readonly hash: number;
  /** PUBLISH's RESP up to the message (`publishHeader`). */
  readonly header: string;
  /** What the subscriber gave with the subscription, handed back with each message. */
  readonly handle: unknown;
  /** The next live channel whose name hashes alike. */
  next: Live | undefined;
}

/** What a message's Redis name finds in the live set. */
export interface Found {
  readonly channel: ChannelId;
  readonly handle: unknown;
}

/**
 * A `RedisBroker`'s live set: every channel subscribed and not unsubscribed, with its Redis name,
 * its PUBLISH header and the subscriber's handle. It is found by the channel (to publish) or by
 * the bytes of the name a message arrived on (a hash, then the bytes compared): a message then
 * finds its channel with no string made from its name and no string hashed. The hash is FNV-1a
 * from a random seed, so that names chosen to collide (a client can choose channel names) cannot
 * be worked out offline; V8 seeds its own string hashes for the same reason.
 */
export class LiveSet {
  readonly #channels = new Map<ChannelId, Live>();
  readonly #hashes = new Map<number, Live>();
  readonly #headers = new PublishHeaders();
  readonly #nameOf: (channel: ChannelId) => string;
  readonly #seed: number;

  /**
   * @param nameOf the Redis name of a channel.
   * @param seed the hash's starting value (32 bits); default: random. Tests pass FNV-1a's own.
   */
  constructor(nameOf: (channel: ChannelId) => string, seed = randomBytes(4).readUInt32LE(0)) {
    this.#nameOf = nameOf;
    this.#seed = seed;
  }

  /** Adds `channel` (again, with this `handle`). @returns its Redis name. */
  add(channel: ChannelId, handle: unknown): string {
    this.delete(channel);
    const name = this.#nameOf(channel);
    const utf8 = Buffer.from(name, "utf8");
    const hash = hashOf(utf8, 0, utf8.length, this.#seed);
    const bytes = utf8.length === name.length ? undefined : utf8;
    const live: Live = { channel, name, bytes, hash, header: publishHeader(name), handle, next: this.#hashes.get(hash) };
    this.#hashes.set(hash, live);
    this.#channels.set(channel, live);
    return name;
  }

  /** Takes `channel` out. @returns its Redis name, or undefined if it was not live. */
  delete(channel: ChannelId): string | undefined {
    const live = this.#channels.get(channel);
    if (live === undefined) return undefined;
    this.#channels.delete(channel);
    const head = this.#hashes.get(live.hash);
    if (head === live) {
      if (live.next === undefined) this.#hashes.delete(live.hash);
      else this.#hashes.set(live.hash, live.next);
    } else {
      let before = head;
      while (before !== undefined && before.next !== live) before = before.next;
      if (before !== undefined) before.next = live.next;
    }
    return live.name;
  }

  /** PUBLISH's header for `channel`, live or not. */
  header(channel: ChannelId): string {
    return this.#channels.get(channel)?.header ?? this.#headers.of(this.#nameOf(channel));
  }

  /** The live channel whose Redis name is `bytes[start..end)`, with its handle; undefined if none is. */
  find(bytes: Buffer, start: number, end: number): Found | undefined {
    for (let live = this.#hashes.get(hashOf(bytes, start, end, this.#seed)); live !== undefined; live = live.next) {
      const named = live.bytes;
      if (named === undefined ? compareAscii(bytes, start, end, live.name) : bytes.compare(named, 0, named.length, start, end) === 0)
        return live;
    }
    return undefined;
  }

  /** The Redis names of every live channel. */
  names(): string[] {
    return Array.from(this.#channels.values(), (live) => live.name);
  }

  /** How many channels are live. */
  get size(): number {
    return this.#channels.size;
  }

  /** Forgets every channel (the broker is closing). */
  clear(): void {
    this.#channels.clear();
    this.#hashes.clear();
  }
}

/** FNV-1a of `bytes[start..end)` from `seed`, cut to 30 bits: a small integer, which V8 keeps unboxed and hashes inline. */
function hashOf(bytes: Buffer, start: number, end: number, seed: number): number {
  let hash = seed;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash & 0x3fff_ffff;
}
