import { randomBytes } from "node:crypto";
import type { HistoryPosition } from "ws-channels";
import type { Kept } from "../history.js";

/*
 * A channel's history on Redis is a stream `PREFIX:history-stream:CH`, whose entry ids are
 * `0-OFFSET`, and a hash `PREFIX:history-meta:CH` with its `epoch` and `top` offset. Both are
 * written in the script that publishes the delivery, so an offset exists exactly when its say was
 * published. A missing hash (never written, expired, flushed) starts a new epoch: offsets restart
 * and a returning client is told `recovered: false`, never a wrong offset.
 */
/** `epoch`: the channel's epoch, made ARGV[1] (a new random one) when the hash is missing. */
const PRELUDE = `local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
end`;

/**
 * KEYS: stream, meta; ARGV: new epoch, size, ttl in seconds, the Redis channel to publish on, the
 * delivery's start (`{"to":CH,`), the entry's inside (`"say":...,"from":...`).
 * Keeps the say, publishes its delivery with offset and epoch, and refreshes both keys' ttl.
 * @returns [the say's offset, the channel's epoch].
 */
export const SAY = `${PRELUDE}
local top = redis.call('HINCRBY', KEYS[2], 'top', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. top, 'e', ARGV[6])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ARGV[6] .. ',"offset":' .. top .. ',"epoch":"' .. epoch .. '"}')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {top, epoch}`;

/**
 * KEYS: stream, meta; ARGV: new epoch, ttl in seconds, the first offset to read ('' for none),
 * the most entries to read. @returns [epoch, top, [[id, ['e', inside]], ...]].
 */
export const READ = `${PRELUDE}
redis.call('EXPIRE', KEYS[2], ARGV[2])
local top = tonumber(redis.call('HGET', KEYS[2], 'top'))
local entries = {}
if ARGV[3] ~= '' then
  entries = redis.call('XRANGE', KEYS[1], '0-' .. ARGV[3], '+', 'COUNT', ARGV[4])
end
return {epoch, top, entries}`;

/** The scripts, as ioredis commands once `defineCommand` has made them. */
export interface HistoryScripts {
  wsHistorySay(...args: (string | number)[]): Promise<[number, string]>;
  wsHistoryRead(...args: (string | number)[]): Promise<[string, number, [string, string[]][]]>;
}

/**
 * Reads what a channel keeps after `since` (from the oldest kept when `since` is of another
 * epoch), at most `limit` says, with READ (two calls when the epoch changed).
 */
export async function readKept(
  commands: HistoryScripts,
  keys: [string, string],
  ttlSeconds: number,
  since: HistoryPosition | undefined,
  limit: number,
): Promise<Kept> {
  const read = (from: number) => commands.wsHistoryRead(...keys, newEpoch(), ttlSeconds, limit > 0 ? from : "", limit);
  let [epoch, offset, entries] = await read((since?.offset ?? 0) + 1);
  if (since !== undefined && since.epoch !== epoch) [epoch, offset, entries] = await read(1);
  const publications = entries.map(([id, fields]) => ({ ...parse(fields[1] ?? ""), offset: Number(id.slice(2)) }));
  return { publications, epoch, offset };
}

/** A new epoch: 64 random bits in hex. */
export function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

/** A kept entry's inside, `"say":...,"from":...`, as an object. */
export function parse(inside: string): { say: unknown; from?: string } {
  return JSON.parse(`{${inside}}`) as { say: unknown; from?: string };
}
