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
 * @returns the say's offset.
 */
export const SAY = `${PRELUDE}
local top = redis.call('HINCRBY', KEYS[2], 'top', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. top, 'e', ARGV[6])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ARGV[6] .. ',"offset":' .. top .. ',"epoch":"' .. epoch .. '"}')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return top`;

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
  wsHistorySay(...args: (string | number)[]): Promise<number>;
  wsHistoryRead(...args: (string | number)[]): Promise<[string, number, [string, string[]][]]>;
}
