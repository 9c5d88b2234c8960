import type { Channels, Member, Presence, PresenceMode, PresenceSnapshot } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";

/**
 * A snapshot as a store gives it: `partial` while the other nodes could not be reached (or this
 * node's entries may be missing from the shared store), so the entries may be incomplete or stale.
 */
export type StoreSnapshot<E> = PresenceSnapshot<E> & { partial?: true };

/** A channel's entries as a store reads them, `partial` as in `StoreSnapshot`. */
export interface StoreEntries<E> {
  entries: E[];
  partial?: true;
}

/**
 * Where a server's presence lives: who is in a channel on every node, and its listeners. Each
 * adapter gives one (`Adapter.presence`): a process alone keeps it itself (`localPresence`), the
 * workers of a node:cluster in the primary (cluster-presence.ts), servers sharing a Redis in it (redis-presence.ts).
 *
 * @typeParam E - one entry, as the server's frames carry it.
 */
export interface PresenceStore<E> {
  /**
   * Makes `member` a listener of `channel`, as `Presence.listen`: `reply` builds the frame written
   * from the snapshot before any diff; applying the diffs to the snapshot gives the channel's
   * entries (on every node) at every moment. A partial snapshot is followed, once the store knows
   * every node's entries again, by a fresh one (`Presence.refresh`) that the diffs go on from.
   * @returns the snapshot, or undefined if `member` is closed.
   */
  listen(
    channel: string,
    member: Member,
    mode: PresenceMode,
    reply: (snapshot: StoreSnapshot<E>) => string | Uint8Array,
  ): Promise<PresenceSnapshot<E> | undefined>;
  /** Stops `member` listening to `channel`. @returns false if it was not listening. */
  unlisten(channel: string, member: Member): boolean;
  /** `channel`'s entries on every node now (this node's alone, partial, if the others cannot be reached). */
  entries(channel: string): Promise<StoreEntries<E>>;
  /** Stops every listener and forgets what it holds. */
  close(): Promise<void>;
}

/** What an adapter builds a server's presence from: the frames, once, as a `Presence` over a `Channels`. */
export interface PresenceParts<E> {
  /** The server's `Channels`: whose memberships are present. */
  readonly channels: Channels<ClientMeta>;
  /**
   * A `Presence` with the server's entries, frames and limits over `channels` (this or another);
   * its `members` frames say `partial` while `partial()` is true.
   */
  local(channels: Channels<ClientMeta>, partial?: () => boolean): Presence<ClientMeta, Member, E>;
  /** One membership's entry, from its meta (what `local`'s presence builds too). */
  entry(meta: ClientMeta): E;
}

/** Presence kept by this process alone: the library's `Presence` over the server's `Channels`. */
export function localPresence<E>({ channels, local }: PresenceParts<E>): PresenceStore<E> {
  const presence = local(channels);
  return {
    listen: (channel, member, mode, reply) => presence.listen(channel, member, mode, reply),
    unlisten: (channel, member) => presence.unlisten(channel, member),
    entries: (channel) => Promise.resolve({ entries: presence.entries(channel) }),
    close: () => presence.close(),
  };
}

/** This node's own entries of `channel`: what a store answers when the other nodes cannot be reached. */
export function ownEntries<E>({ channels, entry }: PresenceParts<E>, channel: string): E[] {
  return channels.reduce(channel, [] as E[], (entries, { meta }) => {
    entries.push(entry(meta));
    return entries;
  });
}

/**
 * The key of a membership in a presence store: its `ref`, or, for a member that has none (the TCP
 * port's), a key of its own, `PREFIX~N`, kept as long as the member lives.
 */
export class MembershipKeys {
  readonly #keys = new WeakMap<Member, string>();
  readonly #prefix: string;
  #next = 0;

  /** @param prefix what this node's own keys start with (its address where keys cross nodes). */
  constructor(prefix = "") {
    this.#prefix = prefix;
  }

  of(member: Member, meta: ClientMeta): string {
    if (meta?.ref) return meta.ref;
    let key = this.#keys.get(member);
    if (key === undefined) {
      key = `${this.#prefix}~${(this.#next++).toString(36)}`;
      this.#keys.set(member, key);
    }
    return key;
  }
}
