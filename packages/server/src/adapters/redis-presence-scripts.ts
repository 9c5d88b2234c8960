/*
 * A channel's presence on Redis is a hash `PREFIX:p:CH` (key -> `{"n": node, "m": meta}`), a
 * version `PREFIX:pv:CH` counting its diffs, and the Redis channel `PREFIX:pd:CH` the diffs are
 * published on; a set `PREFIX:pn:NODE` names the channels a node has written to. Every write
 * publishes its diff in the same script, numbered by the version, and a snapshot reads the hash
 * with its version in one script: a listener applies the diffs numbered above its snapshot's.
 * The version is never deleted, so its numbers never go back while someone buffers diffs.
 */

/**
 * KEYS: hash, version, node's channel set, diff channel; ARGV: channel, then per op a key and an
 * entry's JSON (a join) or "" (a leave). Ops that change nothing (a join of a present key, a
 * leave of an absent one) are not in the diff. @returns the version after it.
 */
export const CHANGE = `local joins, leaves = {}, {}
for i = 2, #ARGV, 2 do
  local key, value = ARGV[i], ARGV[i + 1]
  if value == '' then
    if redis.call('HDEL', KEYS[1], key) == 1 then leaves[#leaves + 1] = key end
  elseif redis.call('HSET', KEYS[1], key, value) == 1 then
    joins[#joins + 1] = {key, value}
  end
end
redis.call('SADD', KEYS[3], ARGV[1])
if #joins + #leaves == 0 then return tonumber(redis.call('GET', KEYS[2]) or '0') end
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', KEYS[4], cjson.encode({v = version, j = joins, l = leaves}))
return version`;

/** KEYS: hash, version. @returns [version, key, entry JSON, key, entry JSON, ...]. */
export const SNAPSHOT = `local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, redis.call('GET', KEYS[2]) or '0')
return all`;

/**
 * KEYS: the node's channel set; ARGV: node, prefix. Removes every entry of the node from every
 * channel it wrote to, publishing the leaves, then forgets the set (a clean shutdown). The
 * channels' keys are built here from the set, so this needs one Redis, not a cluster.
 * @returns how many entries it removed.
 */
export const LEAVE_ALL = `local removed = 0
for _, channel in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local hash = ARGV[2] .. ':p:' .. channel
  local all = redis.call('HGETALL', hash)
  local leaves = {}
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).n == ARGV[1] then
      redis.call('HDEL', hash, all[i])
      leaves[#leaves + 1] = all[i]
    end
  end
  if #leaves > 0 then
    local version = redis.call('INCR', ARGV[2] .. ':pv:' .. channel)
    redis.call('PUBLISH', ARGV[2] .. ':pd:' .. channel, cjson.encode({v = version, j = {}, l = leaves}))
    removed = removed + #leaves
  end
end
redis.call('DEL', KEYS[1])
return removed`;

/** The scripts, as ioredis commands once `defineCommand` has made them. */
export interface PresenceScripts {
  wsPresenceChange(...args: string[]): Promise<number>;
  wsPresenceSnapshot(...args: string[]): Promise<string[]>;
  wsPresenceLeaveAll(...args: string[]): Promise<number>;
}
