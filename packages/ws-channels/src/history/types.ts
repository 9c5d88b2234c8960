import type { ChannelId } from "../types.js";

/** How much history one channel keeps: its last `size` messages, each for `ttlMs`. */
export interface HistoryPolicy {
  /** Messages kept, the newest ones (an integer >= 1). */
  readonly size: number;
  /**
   * How long each message is kept after it was appended, in ms (> 0). A channel nothing was
   * appended to for this long is forgotten: its next append starts again at offset 1, in a new epoch.
   */
  readonly ttlMs: number;
}

/**
 * Which channels keep history, and how much: asked once when a channel's history starts (its
 * first append or position, and again after it expired). Undefined: the channel keeps none.
 */
export type HistoryPolicies = (channel: ChannelId) => HistoryPolicy | undefined;

/** Options of `new History()`. */
export interface HistoryOptions {
  /** Which channels keep history, and how much. */
  history: HistoryPolicies;
  /** How often expired channels are dropped, in ms (> 0; the timer is `unref`ed). Default: 1000. */
  sweepMs?: number;
  /** The clock, in ms. Default: `performance.now` (monotonic). */
  now?: () => number;
}

/**
 * Where a channel's history stands, or where a reader of it stopped: `offset` is a message's
 * place in the channel (1, 2, 3... with no hole; 0 before the first), valid in `epoch` only.
 */
export interface HistoryPosition {
  /** Changes whenever offsets start again at 1 (a new process, expired history): a random string. */
  readonly epoch: string;
  /** The newest offset (for a reader: the last one it has). */
  readonly offset: number;
}

/** One kept message with its offset. */
export interface HistoryEntry<T> {
  readonly offset: number;
  readonly data: T;
}

/**
 * What `History.recover` found: `recovered: true` with every message after the reader's offset
 * up to the newest (`offset`), in order; or `recovered: false` when that range is not whole here
 * (another epoch, an offset older than what is kept or newer than the newest, more than `max`
 * messages), with the position to start again from.
 */
export type HistoryRecovery<T> =
  | (HistoryPosition & { readonly recovered: true; readonly missed: HistoryEntry<T>[] })
  | (HistoryPosition & { readonly recovered: false });

/** What the history holds now. */
export interface HistoryStats {
  /** Channels with history live (appended to or positioned within their ttl). */
  channels: number;
  /** Messages kept over every channel. */
  entries: number;
}
