import type { ChannelId } from "../types.js";
import { compareAscii } from "./ascii.js";
import { PublishHeaders, publishHeader } from "./resp-turn.js";

/** A channel of the live set. */
interface Live {
  readonly channel: ChannelId;
  /** Its Redis name, and whether every UTF-16 unit of it is ASCII (then its bytes are its units). */
  readonly name: string;
  readonly ascii: boolean;
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
 * the bytes of the name a message arrived on (an FNV-1a hash, then the bytes compared):
 * a message then finds its channel without a string made from its name, or a string's hash.
 */
export class LiveSet {
  readonly #channels = new Map<ChannelId, Live>();
  readonly #hashes = new Map<number, Live>();
  readonly #headers = new PublishHeaders();
  readonly #nameOf: (channel: ChannelId) => string;

  /** @param nameOf the Redis name of a channel. */
  constructor(nameOf: (channel: ChannelId) => string) {
    this.#nameOf = nameOf;
  }

  /** Adds `channel` (again, with this `handle`). @returns its Redis name. */
  add(channel: ChannelId, handle: unknown): string {
    this.delete(channel);
    const name = this.#nameOf(channel);
    const bytes = Buffer.from(name, "utf8");
    const hash = hashOf(bytes, 0, bytes.length);
    const live: Live = { channel, name, ascii: bytes.length === name.length, header: publishHeader(name), handle, next: undefined };
    live.next = this.#hashes.get(hash);
    this.#hashes.set(hash, live);
    this.#channels.set(channel, live);
    return name;
  }

  /** Takes `channel` out. @returns its Redis name, or undefined if it was not live. */
  delete(channel: ChannelId): string | undefined {
    const live = this.#channels.get(channel);
    if (live === undefined) return undefined;
    this.#channels.delete(channel);
    const bytes = Buffer.from(live.name, "utf8");
    const hash = hashOf(bytes, 0, bytes.length);
    const head = this.#hashes.get(hash);
    if (head === live) {
      if (live.next === undefined) this.#hashes.delete(hash);
      else this.#hashes.set(hash, live.next);
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
    for (let live = this.#hashes.get(hashOf(bytes, start, end)); live !== undefined; live = live.next) {
      const same = live.ascii ? compareAscii(bytes, start, end, live.name) === true : bytes.toString("utf8", start, end) === live.name;
      if (same) return live;
    }
    return undefined;
  }

  /** The Redis names of every live channel. */
  names(): string[] {
    return Array.from(this.#channels.values(), (live) => live.name);
  }

  get size(): number {
    return this.#channels.size;
  }

  clear(): void {
    this.#channels.clear();
    this.#hashes.clear();
  }
}

/** 32-bit FNV-1a of `bytes[start..end)`, cut to 30 bits: a small integer, which V8 keeps unboxed and hashes inline. */
function hashOf(bytes: Buffer, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash & 0x3fff_ffff;
}
