import { randomBytes } from "node:crypto";
import type { ChannelId } from "../types.js";
import { compareAscii } from "./ascii.js";
import { PublishHeaders, publishHeader } from "./resp-turn.js";

/** A channel of the live set, as `add` and `find` give it. */
export interface LiveChannel<Handle> {
  readonly channel: ChannelId;
  /** Its Redis name. */
  readonly name: string;
  /** PUBLISH's RESP up to the message (`publishHeader`). */
  readonly header: string;
  /** What the subscriber gave with the subscription, handed back with each message. */
  readonly handle: Handle | undefined;
}

/** A live channel as the set keeps it. */
interface Live<Handle> extends LiveChannel<Handle> {
  /** The name's UTF-8 bytes if any unit of it is past ASCII (else its bytes are its units). */
  readonly bytes: Buffer | undefined;
  readonly hash: number;
  /** The set that made it: an entry is believed only by its own set. */
  readonly owner: LiveSet<Handle>;
  /** The next live channel in its bucket. */
  next: Live<Handle> | undefined;
}

/**
 * A `RedisBroker`'s live set: every channel subscribed and not unsubscribed, with its Redis name,
 * its PUBLISH header and the subscriber's handle. It is found by the channel (to publish) or by
 * the bytes of the name a message arrived on (a hash, then the bytes compared): a message then
 * finds its channel with no string made from its name and no string hashed. The hash is FNV-1a
 * from a random seed, so that names chosen to collide (a client can choose channel names) cannot
 * be worked out offline; V8 seeds its own string hashes for the same reason. The hashes index an
 * array of buckets, not a Map: a message finds its bucket with one mask and one element load. Their
 * count is a power of two, doubled when live channels outnumber it and halved when they fall
 * below a quarter of it, so memory follows the live set both ways.
 */
export class LiveSet<Handle> {
  readonly #channels = new Map<ChannelId, Live<Handle>>();
  /** Each bucket's first live channel, by hash modulo their count. */
  #buckets: (Live<Handle> | undefined)[] = new Array(MIN_BUCKETS).fill(undefined);
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

  /** Adds `channel` (again, with this `handle`). @returns it as the set keeps it. */
  add(channel: ChannelId, handle: Handle | undefined): LiveChannel<Handle> {
    this.delete(channel);
    const name = this.#nameOf(channel);
    const utf8 = Buffer.from(name, "utf8");
    const hash = hashOf(utf8, 0, utf8.length, this.#seed);
    const bytes = utf8.length === name.length ? undefined : utf8;
    const live: Live<Handle> = { channel, name, bytes, hash, header: publishHeader(name), handle, owner: this, next: undefined };
    this.#channels.set(channel, live);
    if (this.#channels.size > this.#buckets.length) this.#rehash(this.#buckets.length * 2);
    else this.#push(live);
    return live;
  }

  /** Takes `channel` out. @returns its Redis name, or undefined if it was not live. */
  delete(channel: ChannelId): string | undefined {
    const live = this.#channels.get(channel);
    if (live === undefined) return undefined;
    this.#channels.delete(channel);
    const at = live.hash & (this.#buckets.length - 1);
    let before = this.#buckets[at];
    if (before === live) this.#buckets[at] = live.next;
    else {
      while (before !== undefined && before.next !== live) before = before.next;
      if (before !== undefined) before.next = live.next;
    }
    const count = this.#buckets.length;
    if (count > MIN_BUCKETS && this.#channels.size * 4 < count) this.#rehash(count / 2);
    return live.name;
  }

  /**
   * PUBLISH's header for `channel`, live or not: taken from `entry` when that is what this set's
   * `add` returned for `channel` (then, or before it was deleted: the header is the name's), else
   * looked up. `entry` may be anything: it is only believed once known to be this set's.
   */
  header(channel: ChannelId, entry?: unknown): string {
    const live = entry as Live<Handle> | null | undefined;
    if (live?.owner === this && live.channel === channel) return live.header;
    return this.#channels.get(channel)?.header ?? this.#headers.of(this.#nameOf(channel));
  }

  /** The live channel whose Redis name is `bytes[start..end)`, with its handle; undefined if none is. */
  find(bytes: Buffer, start: number, end: number): LiveChannel<Handle> | undefined {
    const hash = hashOf(bytes, start, end, this.#seed);
    for (let live = this.#buckets[hash & (this.#buckets.length - 1)]; live !== undefined; live = live.next) {
      if (live.hash !== hash) continue;
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
    this.#buckets = new Array(MIN_BUCKETS).fill(undefined);
  }

  /** Puts `live` first in its bucket. */
  #push(live: Live<Handle>): void {
    const at = live.hash & (this.#buckets.length - 1);
    live.next = this.#buckets[at];
    this.#buckets[at] = live;
  }

  /** Spreads every live channel over `count` buckets (a power of two). */
  #rehash(count: number): void {
    this.#buckets = new Array(count).fill(undefined);
    for (const live of this.#channels.values()) this.#push(live);
  }
}

/** The fewest buckets. */
const MIN_BUCKETS = 16;

/** FNV-1a of `bytes[start..end)` from `seed`, cut to 30 bits: a small integer, which V8 keeps unboxed. */
function hashOf(bytes: Buffer, start: number, end: number, seed: number): number {
  let hash = seed;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash & 0x3fff_ffff;
}
