import type { Redis } from "ioredis";
import type { RedisConnections } from "ws-channels/redis";
import type { IdClaims, NodeAddress } from "./adapter.js";

/** How long a claim lives in Redis unless its node refreshes it, in ms. */
export const CLAIM_TTL_MS = 10_000;
/** How often a node refreshes its claims, in ms. */
export const REFRESH_MS = 3_000;
/** The most ids one script call handles. */
const BATCH = 500;

/*
 * Each id is a sorted set `PREFIX:id:ID` of the addresses of the nodes holding it, scored by when
 * the claim expires (Redis's own clock, so nodes' clocks do not matter). A node's claims expire
 * unless it refreshes them: the ids of a node that dies without a goodbye are free again within
 * CLAIM_TTL_MS. Scripts make each step atomic, so two nodes cannot both take an exclusive id.
 */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: ids; ARGV: node, ttl, then per key "1" (exclusive) or "0". @returns the indexes refused. */
const CLAIM = `${NOW}
local refused = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local mine = redis.call('ZSCORE', key, ARGV[1]) and 1 or 0
  if ARGV[2 + i] == '1' and redis.call('ZCARD', key) - mine > 0 then
    refused[#refused + 1] = i
  else
    redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return refused`;

/** KEYS: ids; ARGV: node. Removes this node only, so a late release never frees another node's claim. */
const RELEASE = `for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0`;

/** KEYS: ids; ARGV: node. @returns per key, the addresses of the other nodes holding it now. */
const LOCATE = `${NOW}
local found = {}
for i, key in ipairs(KEYS) do
  local nodes = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
    if node ~= ARGV[1] then nodes[#nodes + 1] = node end
  end
  found[i] = nodes
end
return found`;

interface Scripts {
  wsClaim(...args: (string | number)[]): Promise<number[]>;
  wsRelease(...args: (string | number)[]): Promise<number>;
  wsLocate(...args: (string | number)[]): Promise<string[][]>;
}

/**
 * Ids claimed in Redis, for servers on many machines. A node whose Redis restarts empty claims
 * its ids again on reconnecting. While Redis cannot be reached, claims are granted (each node
 * still refuses a duplicate among its own connections) and made for real when it returns; an
 * exclusive id another node took meanwhile is reported to `onLost`.
 */
export class RedisIds implements IdClaims {
  readonly #connections: RedisConnections;
  readonly #redis: Redis & Scripts;
  readonly #node: NodeAddress;
  /** The ids this node holds, and whether each is exclusive. */
  readonly #held = new Map<string, boolean>();
  readonly #lost: ((id: string) => void)[] = [];
  readonly #timer: NodeJS.Timeout;

  /** Claims for node `node` on the commands connection of `connections`, under its prefix. */
  constructor(connections: RedisConnections, node: NodeAddress) {
    this.#connections = connections;
    this.#node = node;
    this.#redis = connections.commands as Redis & Scripts;
    this.#redis.defineCommand("wsClaim", { lua: CLAIM });
    this.#redis.defineCommand("wsRelease", { lua: RELEASE });
    this.#redis.defineCommand("wsLocate", { lua: LOCATE });
    this.#redis.on("ready", this.#refresh);
    this.#timer = setInterval(this.#refresh, REFRESH_MS).unref();
  }

  async claim(id: string, exclusive: boolean): Promise<boolean> {
    this.#held.set(id, exclusive);
    try {
      const refused = await this.#redis.wsClaim(1, this.#key(id), this.#node, CLAIM_TTL_MS, exclusive ? "1" : "0");
      if (refused.length === 0) return true;
    } catch {
      return true; // Redis unreachable: claimed for real on the first refresh after it returns
    }
    this.#held.delete(id);
    return false;
  }

  release(id: string): void {
    if (!this.#held.delete(id)) return;
    this.#redis.wsRelease(1, this.#key(id), this.#node).catch(() => undefined); // it expires by itself
  }

  async locate(ids: readonly string[]): Promise<Map<string, NodeAddress[]>> {
    const found = new Map<string, NodeAddress[]>();
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      const nodes = await this.#redis.wsLocate(batch.length, ...batch.map((id) => this.#key(id)), this.#node).catch(() => []);
      for (const [j, held] of nodes.entries()) if (held.length > 0) found.set(batch[j] as string, held);
    }
    return found;
  }

  onLost(listener: (id: string) => void): void {
    this.#lost.push(listener);
  }

  /** Releases every claim of this node; the connections are their owner's. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#redis.off("ready", this.#refresh);
    const held = [...this.#held.keys()];
    this.#held.clear();
    for (let i = 0; i < held.length; i += BATCH) {
      const keys = held.slice(i, i + BATCH).map((id) => this.#key(id));
      await this.#redis.wsRelease(keys.length, ...keys, this.#node).catch(() => undefined);
    }
  }

  /** Refreshes (or, after Redis lost them, makes again) every claim of this node, in batches. */
  readonly #refresh = async (): Promise<void> => {
    const held = [...this.#held];
    for (let i = 0; i < held.length; i += BATCH) {
      const batch = held.slice(i, i + BATCH);
      const keys = batch.map(([id]) => this.#key(id));
      const flags = batch.map(([, exclusive]) => (exclusive ? "1" : "0"));
      let refused: number[];
      try {
        refused = await this.#redis.wsClaim(keys.length, ...keys, this.#node, CLAIM_TTL_MS, ...flags);
      } catch {
        return; // unreachable: the next `ready` tries again
      }
      for (const index of refused) {
        const [id] = batch[index - 1] as [string, boolean];
        if (!this.#held.delete(id)) continue; // released meanwhile
        for (const listener of this.#lost) listener(id);
      }
    }
  };

  #key(id: string): string {
    return this.#connections.name("id", id);
  }
}
