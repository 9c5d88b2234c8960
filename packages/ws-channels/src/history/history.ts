import { randomBytes } from "node:crypto";
import { checkChannel, checkFunction, describe } from "../checks.js";
import type { ChannelId } from "../types.js";
import { Ring } from "./ring.js";
import type { HistoryEntry, HistoryOptions, HistoryPolicies, HistoryPosition, HistoryRecovery, HistoryStats } from "./types.js";

/**
 * The last messages of each channel that keeps history, in memory, with an `offset` per message
 * (1, 2, 3... per channel, no hole) and an `epoch` per channel (a random string that changes
 * whenever offsets start again), so that a reader that missed some can get exactly those back.
 *
 * One ring per channel holds its last `size` messages; each is kept `ttlMs`, and a channel
 * appended to for no `ttlMs` is dropped, so memory is bounded by `size` x the channels appended to
 * within their ttl. Every call is synchronous: an append and a recovery made with no `await`
 * between them and a broadcast or a join see the same history.
 *
 * @typeParam T - what a message is (the encoded text, say).
 */
export class History<T = string> {
  readonly #policies: HistoryPolicies;
  readonly #now: () => number;
  readonly #rings = new Map<ChannelId, Ring<T>>();
  /** Random per `History`, so that two processes (or a restart) never share an epoch. */
  readonly #base = randomBytes(6).toString("base64url");
  #epochs = 0;
  #timer: NodeJS.Timeout | undefined;

  /**
   * @throws {TypeError} if `options` or `history` or `now` is not what it should be.
   * @throws {RangeError} for a `sweepMs` that is not a number > 0.
   */
  constructor(options: HistoryOptions) {
    if (options === null || typeof options !== "object") throw new TypeError(`options must be an object, got ${describe(options)}`);
    this.#policies = checkFunction("history", options.history, "(channel) => ({ size, ttlMs }) | undefined");
    this.#now = checkFunction("now", options.now ?? (() => performance.now()), "() => number");
    const { sweepMs = 1000 } = options;
    if (typeof sweepMs !== "number" || !(sweepMs > 0)) throw new RangeError(`sweepMs must be a number > 0, got ${describe(sweepMs)}`);
    this.#timer = setInterval(() => this.sweep(), sweepMs).unref();
  }

  /**
   * Whether `channel` keeps history (what the `history` option answers for it).
   * @throws {TypeError} for a bad `channel`.
   */
  keeps(channel: ChannelId): boolean {
    return this.#ring(checkChannel(channel)) !== undefined;
  }

  /**
   * Appends `data` to `channel`'s history.
   * @returns its offset and the channel's epoch; undefined if the channel keeps no history.
   * @throws {TypeError} for a bad `channel`; {RangeError} if the policy is not a valid `HistoryPolicy`.
   */
  append(channel: ChannelId, data: T): HistoryPosition | undefined {
    const ring = this.#ring(checkChannel(channel));
    if (ring === undefined) return undefined;
    // re-inserted, so that the Map stays in the order channels were last appended to
    this.#rings.delete(channel);
    this.#rings.set(channel, ring);
    return { epoch: ring.epoch, offset: ring.append(data, this.#now()) };
  }

  /**
   * Where `channel`'s history stands now: its epoch and newest offset (0 if nothing was appended
   * yet, which starts the channel's epoch so that the next append is offset 1 in it).
   * @returns undefined if the channel keeps no history.
   * @throws {TypeError} for a bad `channel`.
   */
  position(channel: ChannelId): HistoryPosition | undefined {
    const ring = this.#ring(checkChannel(channel));
    return ring && { epoch: ring.epoch, offset: ring.top };
  }

  /**
   * The messages of `channel` after `from.offset`, if they are all still kept in `from.epoch`.
   * @param from where the reader stopped: the position of its last message, or of its `position()`.
   * @param max the most messages to return (an integer >= 0); more missed: `recovered: false`. Default: no bound but the ring's size.
   * @returns undefined if the channel keeps no history.
   * @throws {TypeError} for a bad `channel` or `from`; {RangeError} for a bad `max`.
   */
  recover(channel: ChannelId, from: HistoryPosition, max = Number.POSITIVE_INFINITY): HistoryRecovery<T> | undefined {
    const ring = this.#ring(checkChannel(channel));
    if (
      from === null ||
      typeof from !== "object" ||
      typeof from.epoch !== "string" ||
      !(Number.isSafeInteger(from.offset) && from.offset >= 0)
    )
      throw new TypeError(`from must be { epoch: string, offset: integer >= 0 }, got ${describe(from)}`);
    if (!(max >= 0) || (max !== Number.POSITIVE_INFINITY && !Number.isInteger(max)))
      throw new RangeError(`max must be an integer >= 0, got ${describe(max)}`);
    if (ring === undefined) return undefined;
    ring.trim(this.#now());
    const { epoch, top: offset } = ring;
    const whole = from.epoch === epoch && from.offset <= offset && from.offset >= ring.oldest - 1 && offset - from.offset <= max;
    if (!whole) return { recovered: false, epoch, offset };
    const missed: { offset: number; data: T }[] = [];
    ring.forEachAfter(from.offset, (data, at) => missed.push({ offset: at, data }));
    return { recovered: true, epoch, offset, missed };
  }

  /**
   * Reads what `channel` keeps, oldest first: the messages after `after` (or from the oldest kept,
   * if `after` is older), at most `max` of them. Unlike `recover` it never refuses: a reader
   * compares the epoch and the first offset with its own to see what it cannot have.
   * @param after an offset in the channel's current epoch (integer >= 0); 0: from the oldest kept.
   * @param max the most messages to return (an integer >= 0). Default: no bound but the ring's size.
   * @returns the channel's position and the messages read; undefined if the channel keeps no history.
   * @throws {TypeError} for a bad `channel`; {RangeError} for a bad `after` or `max`.
   */
  read(channel: ChannelId, after = 0, max = Number.POSITIVE_INFINITY): (HistoryPosition & { entries: HistoryEntry<T>[] }) | undefined {
    const ring = this.#ring(checkChannel(channel));
    if (!(Number.isSafeInteger(after) && after >= 0)) throw new RangeError(`after must be an integer >= 0, got ${describe(after)}`);
    if (!(max >= 0) || (max !== Number.POSITIVE_INFINITY && !Number.isInteger(max)))
      throw new RangeError(`max must be an integer >= 0, got ${describe(max)}`);
    if (ring === undefined) return undefined;
    ring.trim(this.#now());
    const entries: HistoryEntry<T>[] = [];
    const start = Math.min(Math.max(after, ring.oldest - 1), ring.top);
    const last = Math.min(ring.top, start + max);
    ring.forEachAfter(start, (data, offset) => {
      if (offset <= last) entries.push({ offset, data });
    });
    return { epoch: ring.epoch, offset: ring.top, entries };
  }

  /** Drops the expired messages of every channel, and the channels appended to for no `ttlMs`. */
  sweep(): void {
    const now = this.#now();
    for (const [channel, ring] of this.#rings) {
      if (now - ring.touched >= ring.ttlMs) this.#rings.delete(channel);
      else ring.trim(now);
    }
  }

  /** What the history holds now. */
  stats(): HistoryStats {
    let entries = 0;
    for (const ring of this.#rings.values()) entries += ring.length;
    return { channels: this.#rings.size, entries };
  }

  /** Forgets every channel's history and stops the sweep timer; the history can still be used (unswept). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#rings.clear();
  }

  /** The channel's live ring, made (in a new epoch) if it has none or its last expired. */
  #ring(channel: ChannelId): Ring<T> | undefined {
    const now = this.#now();
    const ring = this.#rings.get(channel);
    if (ring !== undefined && now - ring.touched < ring.ttlMs) return ring;
    const policy = this.#policies(channel);
    if (policy === undefined) {
      this.#rings.delete(channel);
      return undefined;
    }
    const { size, ttlMs } = policy;
    if (!Number.isInteger(size) || size < 1 || typeof ttlMs !== "number" || !(ttlMs > 0))
      throw new RangeError(`history(${describe(channel)}) must answer { size: integer >= 1, ttlMs: number > 0 }, got ${describe(policy)}`);
    const made = new Ring<T>(`${this.#base}${(this.#epochs++).toString(36)}`, size, ttlMs, now);
    this.#rings.delete(channel);
    this.#rings.set(channel, made);
    return made;
  }
}
