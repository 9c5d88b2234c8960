import type { ChannelId } from "../types.js";

/** The most entries (joins and leaves together) one diff frame carries. */
export const MAX_FRAME_ENTRIES = 1000;
/** The most bytes one diff frame carries, unless a single entry is larger. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** The joins and leaves of one channel in one event-loop turn. */
export interface PresenceDiff<E> {
  joins: E[];
  leaves: E[];
}

/** How many connections (entries) a channel has, and how many users (distinct `user` keys). */
export interface PresenceCount {
  connections: number;
  users: number;
}

/** Builds the frames presence listeners get; each is built once and fanned out to every listener. */
export interface PresenceFrames<E> {
  /** Joins and leaves, at most `MAX_FRAME_ENTRIES` entries and (if it can be split) `MAX_FRAME_BYTES`. */
  diff(channel: ChannelId, diff: PresenceDiff<E>): string | Uint8Array;
  /** The counts, for count listeners, and for full-list listeners while the channel is over `max`. */
  count(channel: ChannelId, count: PresenceCount): string | Uint8Array;
  /** Every entry, for full-list listeners once the channel falls back to `max` entries or fewer. */
  members(channel: ChannelId, entries: E[]): string | Uint8Array;
}

/**
 * `diff` as frames: one per `MAX_FRAME_ENTRIES` entries, a frame over `MAX_FRAME_BYTES` split in
 * halves again until it fits (or holds one entry). Joins come before leaves; a diff never holds a
 * join and a leave of one entry, so the order within a frame does not matter.
 */
export function diffFrames<E>(channel: ChannelId, diff: PresenceDiff<E>, frames: PresenceFrames<E>): (string | Uint8Array)[] {
  const out: (string | Uint8Array)[] = [];
  const { joins, leaves } = diff;
  const emit = (from: number, to: number): void => {
    const part = { joins: joins.slice(Math.min(from, joins.length), Math.min(to, joins.length)), leaves: [] as E[] };
    part.leaves = leaves.slice(Math.max(from - joins.length, 0), Math.max(to - joins.length, 0));
    const frame = frames.diff(channel, part);
    if (to - from > 1 && byteLength(frame) > MAX_FRAME_BYTES) {
      const middle = from + Math.floor((to - from) / 2);
      emit(from, middle);
      emit(middle, to);
    } else out.push(frame);
  };
  const total = joins.length + leaves.length;
  for (let from = 0; from < total; from += MAX_FRAME_ENTRIES) emit(from, Math.min(from + MAX_FRAME_ENTRIES, total));
  return out;
}

function byteLength(frame: string | Uint8Array): number {
  return typeof frame === "string" ? Buffer.byteLength(frame) : frame.byteLength;
}
