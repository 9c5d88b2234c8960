/*
 * Each id is a sorted set `PREFIX:id:ID` of the addresses of the nodes holding it, scored by when
 * the claim expires (Redis's own clock, so nodes' clocks do not matter). A node's claims expire
 * unless it refreshes them: the ids of a node that dies without a goodbye are free again within
 * CLAIM_TTL_MS. Scripts make each step atomic, so two nodes cannot both take an exclusive id.
 */
/** Every script's start: `now` in ms by Redis's clock, and `foreign(key)`, whether a key is someone else's (not a sorted set). */
const PRELUDE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function foreign(key)
  local kind = redis.call('TYPE', key)['ok']
  return kind ~= 'zset' and kind ~= 'none'
end`;

/**
 * KEYS: ids; ARGV: node, ttl, then per key "1" (exclusive) or "0". @returns the indexes refused. A
 * key that is not a sorted set (written by someone else: anyone can write to Redis) refuses its id.
 */
export const CLAIM = `${PRELUDE}
local refused = {}
for i, key in ipairs(KEYS) do
  local taken = foreign(key)
  if not taken then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    local mine = redis.call('ZSCORE', key, ARGV[1]) and 1 or 0
    taken = ARGV[2 + i] == '1' and redis.call('ZCARD', key) - mine > 0
  end
  if taken then
    refused[#refused + 1] = i
  else
    redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return refused`;

/** KEYS: ids; ARGV: node. Removes this node only, so a late release never frees another node's claim. */
export const RELEASE = `for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0`;

/** KEYS: ids; ARGV: node. @returns per key, the addresses of the other nodes holding it now. */
export const LOCATE = `${PRELUDE}
local found = {}
for i, key in ipairs(KEYS) do
  local nodes = {}
  local held = foreign(key) and {} or redis.call('ZRANGEBYSCORE', key, now, '+inf')
  for _, node in ipairs(held) do
    if node ~= ARGV[1] then nodes[#nodes + 1] = node end
  end
  found[i] = nodes
end
return found`;

/** The scripts, as ioredis commands once `defineCommand` has made them. */
export interface Scripts {
  wsClaim(...args: (string | number)[]): Promise<number[]>;
  wsRelease(...args: (string | number)[]): Promise<number>;
  wsLocate(...args: (string | number)[]): Promise<string[][]>;
}
