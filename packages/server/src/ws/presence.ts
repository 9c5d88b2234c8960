import { randomBytes } from "node:crypto";
import { type Channels, type Member, Presence, type PresenceMode, type SlowConsumerPolicy } from "ws-channels";
import type { PresenceStore, StoreSnapshot } from "../adapters/presence.js";
import type { ClientMeta } from "../client-meta.js";
import type { Req } from "./protocol.js";

/** One connection in one channel, as presence frames carry it. */
export interface PresenceEntry {
  ref: string;
  id: string | null;
  info?: Readonly<Record<string, unknown>>;
}

/** The server's presence, wherever its adapter keeps it. */
export type ServerPresence = PresenceStore<PresenceEntry>;

/** This process's part of every ref: random, so that refs made on two nodes never meet. */
const NODE = randomBytes(6).toString("base64url");
let refs = 0;

/** A new presence ref: this node's mark and a counter, so unique across nodes and never reused. */
export function nextRef(): string {
  return `${NODE}.${(refs++).toString(36)}`;
}

/** A membership's entry: a WebSocket membership's ref, id and info (the TCP port's: an empty ref). */
export function entryOf(meta: ClientMeta): PresenceEntry {
  const entry: PresenceEntry = { ref: meta?.ref ?? "", id: meta?.id ?? null };
  if (meta?.info !== undefined) entry.info = meta.info;
  return entry;
}

/**
 * A `Presence` with the server's frames (docs/protocol.md), `users` counted by id (a connection
 * without one is its own user), over `channels`: the server's own, or a cluster worker's mirror
 * of every worker's members (adapters/cluster-presence.ts). Its `members` frames say
 * `"partial": true` while `partial()` is.
 */
export function serverPresence(
  channels: Channels<ClientMeta>,
  options: { max: number; highWaterMark: number; slowConsumer: SlowConsumerPolicy },
  partial: () => boolean = () => false,
): Presence<ClientMeta, Member, PresenceEntry> {
  return new Presence(channels, {
    entry: (_member, meta) => entryOf(meta),
    user: (entry) => entry.id ?? entry,
    frames: {
      diff: (presence, { joins, leaves }) => JSON.stringify({ presence, joins, leaves: leaves.map((entry) => entry.ref) }),
      count: (presence, count) => JSON.stringify({ presence, count }),
      members: (presence, members) => JSON.stringify(partial() ? { presence, members, partial: true } : { presence, members }),
    },
    ...options,
  });
}

/** The `joined` reply of a join with presence, from the snapshot the listener starts from. */
export function joinedReply(channel: string, ref: string, snapshot: StoreSnapshot<PresenceEntry>, req: Req | undefined): string {
  const reply = { joined: channel, ref, ...("entries" in snapshot ? { presence: snapshot.entries, partial: snapshot.partial } : snapshot) };
  return JSON.stringify(req === undefined ? reply : { ...reply, req });
}

/** A presence snapshot as a frame of its own (after a join with history): `members`, or `count`. */
export function snapshotFrame(channel: string, snapshot: StoreSnapshot<PresenceEntry>): string {
  return JSON.stringify({
    presence: channel,
    ...("entries" in snapshot ? { members: snapshot.entries, partial: snapshot.partial } : snapshot),
  });
}

/** The ref `member` holds in `channel` (O(channel): for a join again with presence only). */
export function refIn(channels: Channels<ClientMeta>, channel: string, member: Member): string {
  return channels.reduce(channel, "", (ref, membership) => (membership.member === member ? (membership.meta?.ref ?? "") : ref));
}

export type { PresenceMode };
