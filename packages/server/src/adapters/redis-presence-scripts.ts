/*
 * A channel's presence on Redis is a hash `PREFIX:p:CH` (key -> `{"n": node, "m": meta}`), a
 * version `PREFIX:pv:CH` counting its diffs, and the Redis channel `PREFIX:pd:CH` the diffs are
 * published on; a set `PREFIX:pn:NODE` names the channels a node has written to, `PREFIX:pb:NODE`
 * is its beat (a key with a TTL), `PREFIX:pnodes` the nodes with presence and `PREFIX:preaper`
 * the reaper's lease. Every write
 * publishes its diff in the same script, numbered by the version, and a snapshot reads the hash
 * with its version in one script: a listener applies the diffs numbered above its snapshot's.
 * The version is never deleted, so its numbers never go back while someone buffers diffs.
 */

/** A node's beat lives this long unless refreshed (every BEAT_MS): silent that long, it is dead. */
export const BEAT_TTL_MS = 10_000;
/** How often a node beats and, holding the lease, reaps the dead. */
export const BEAT_MS = 3000;
/** How long the reaper's lease lasts unless its holder beats again: a reaper that dies is replaced after it. */
export const LEASE_MS = 6000;

/**
 * KEYS: hash, version, node's channel set, diff channel, node's beat, the set of nodes with
 * presence; ARGV: node, channel, "1" if the ops are the node's whole presence in the channel (its
 * other entries there leave: a rewrite after Redis was unreachable) else "0", then per op a key and
 * an entry's JSON (a join) or "" (a leave). Ops that change nothing (a join of a present key, a
 * leave of an absent one) are not in the diff, so a rewrite publishes only what Redis was missing;
 * a join and a leave of one key in one script cancel, as in a turn's diff on one node.
 * @returns the version after it, or -1 if the node's beat was gone (reaped, or Redis lost its data).
 */
export const CHANGE = `local joins, leaves, joined = {}, {}, {}
if ARGV[3] == '1' then
  local given = {}
  for i = 4, #ARGV, 2 do given[ARGV[i]] = true end
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if not given[all[i]] and cjson.decode(all[i + 1]).n == ARGV[1] then
      redis.call('HDEL', KEYS[1], all[i])
      leaves[#leaves + 1] = all[i]
    end
  end
end
for i = 4, #ARGV, 2 do
  local key, value = ARGV[i], ARGV[i + 1]
  if value == '' then
    if redis.call('HDEL', KEYS[1], key) == 0 then -- absent: nothing to tell
    elseif joined[key] then joins[joined[key]] = false -- joined in this script: the two cancel
    else leaves[#leaves + 1] = key end
  elseif redis.call('HSET', KEYS[1], key, value) == 1 then
    joins[#joins + 1] = {key, value}
    joined[key] = #joins
  end
end
local net = {}
for _, join in ipairs(joins) do if join then net[#net + 1] = join end end
if ARGV[3] == '1' and #ARGV < 4 then redis.call('SREM', KEYS[3], ARGV[2]) else redis.call('SADD', KEYS[3], ARGV[2]) end
local alive = redis.call('EXISTS', KEYS[5]) == 1
redis.call('SET', KEYS[5], '1', 'PX', ${BEAT_TTL_MS}) -- a node with entries beats: never reaped while writing
redis.call('SADD', KEYS[6], ARGV[1])
local version = tonumber(redis.call('GET', KEYS[2]) or '0')
if #net + #leaves > 0 then
  version = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', KEYS[4], cjson.encode({v = version, n = ARGV[1], j = net, l = leaves}))
end
if not alive then return -1 end
return version`;

/** KEYS: hash, version. @returns [version, key, entry JSON, key, entry JSON, ...]. */
export const SNAPSHOT = `local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, redis.call('GET', KEYS[2]) or '0')
return all`;

/**
 * `leave_all(node, prefix)`: removes every entry of `node` from every channel it wrote to,
 * publishing the leaves, and forgets its channel set. The channels' keys are built here from the
 * set, so these scripts need one Redis, not a cluster. @returns how many entries it removed.
 */
const LEAVE_ALL_FUNCTION = `local function leave_all(node, prefix)
  local removed = 0
  for _, channel in ipairs(redis.call('SMEMBERS', prefix .. ':pn:' .. node)) do
    local hash = prefix .. ':p:' .. channel
    local all = redis.call('HGETALL', hash)
    local leaves = {}
    for i = 1, #all, 2 do
      if cjson.decode(all[i + 1]).n == node then
        redis.call('HDEL', hash, all[i])
        leaves[#leaves + 1] = all[i]
      end
    end
    if #leaves > 0 then
      local version = redis.call('INCR', prefix .. ':pv:' .. channel)
      redis.call('PUBLISH', prefix .. ':pd:' .. channel, cjson.encode({v = version, n = node, j = {}, l = leaves}))
      removed = removed + #leaves
    end
  end
  redis.call('DEL', prefix .. ':pn:' .. node)
  return removed
end`;

/** KEYS: the node's beat, the set of nodes with presence, the reaper's lease; ARGV: node, prefix. A clean shutdown. */
export const LEAVE_ALL = `${LEAVE_ALL_FUNCTION}
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return leave_all(ARGV[1], ARGV[2])`;

/**
 * KEYS: the node's beat, the set of nodes with presence, the reaper's lease; ARGV: node, prefix.
 * Beats; then, if the lease is free or this node's, takes it and removes the entries of every node
 * whose beat has expired. One script: two reapers can never both remove a node's entries.
 * @returns [how many entries it removed, 1 if this node's beat was still there else 0 (it was
 *   reaped, or Redis lost its data: its entries must be written again)].
 */
export const BEAT = `${LEAVE_ALL_FUNCTION}
local alive = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ${BEAT_TTL_MS})
redis.call('SADD', KEYS[2], ARGV[1])
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return {0, alive} end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ${LEASE_MS})
local removed = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[2] .. ':pb:' .. node) == 0 then
    removed = removed + leave_all(node, ARGV[2])
    redis.call('SREM', KEYS[2], node)
  end
end
return {removed, alive}`;

/** The scripts, as ioredis commands once `defineCommand` has made them. */
export interface PresenceScripts {
  wsPresenceChange(...args: string[]): Promise<number>;
  wsPresenceSnapshot(...args: string[]): Promise<string[]>;
  wsPresenceLeaveAll(...args: string[]): Promise<number>;
  wsPresenceBeat(...args: string[]): Promise<[removed: number, alive: number]>;
}
