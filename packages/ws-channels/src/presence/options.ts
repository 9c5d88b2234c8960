import { Channels } from "../channels.js";
import { checkFunction, describe } from "../checks.js";
import type { SlowConsumerPolicy } from "../options.js";
import type { Member } from "../transports/index.js";
import type { PresenceFrames } from "./frames.js";

/** Options of `new Presence()`. */
export interface PresenceOptions<Meta, M, E> {
  /** A membership's entry, from its member and meta; asked at join, leave and snapshot: it must give the same entry each time. */
  entry(member: M, meta: Meta): E;
  /** Builds the frames listeners get. */
  frames: PresenceFrames<E>;
  /** The user an entry belongs to, for `count().users` (one user with two tabs: two entries, one user). Default: the entry. */
  user?(entry: E): unknown;
  /** Over this many entries, full-list listeners get counts instead of diffs until it falls back. Default: 1,000. */
  max?: number;
  /** Count frames go out when the count changes, at most once per this many ms. Default: 1,000. */
  countInterval?: number;
  /** The slow-consumer rule for presence frames, as `ChannelsOptions` (defaults: 1 MiB, `"skip"`). */
  highWaterMark?: number;
  slowConsumer?: SlowConsumerPolicy;
}

/**
 * Checks `new Presence()`'s arguments and fills in the defaults.
 * @throws {TypeError} if `channels` is not a `Channels`, or `entry`, `user` or a frame builder not a function.
 * @throws {RangeError} if `max` or `countInterval` is not a number >= 0.
 */
export function checkOptions<Meta, M extends Member, E>(
  channels: Channels<Meta, M>,
  options: PresenceOptions<Meta, M, E>,
): PresenceOptions<Meta, M, E> & { max: number; countInterval: number } {
  if (!(channels instanceof Channels)) throw new TypeError(`channels must be a Channels, got ${describe(channels)}`);
  const { entry, frames, user, max = 1000, countInterval = 1000 } = options ?? {};
  checkFunction("entry", entry, "(member, meta) => entry");
  for (const name of ["diff", "count", "members"] as const) checkFunction(`frames.${name}`, frames?.[name], "(channel, value) => frame");
  if (user !== undefined) checkFunction("user", user, "(entry) => user");
  for (const [name, value] of [
    ["max", max],
    ["countInterval", countInterval],
  ] as const) {
    if (typeof value !== "number" || !(value >= 0)) throw new RangeError(`${name} must be a number >= 0, got ${describe(value)}`);
  }
  return { ...options, max, countInterval };
}
