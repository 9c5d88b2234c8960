import { Redis } from "ioredis";
import { emitted } from "../wait.js";
import { type IdRegistry, newRoute } from "./registry.js";

/** How long a claim lives in Redis unless its node refreshes it, in ms. */
export const CLAIM_TTL_MS = 10_000;
/** How often a node refreshes its claims, in ms. */
export const REFRESH_MS = 3_000;
/** How long Redis may take to answer, in ms, before the registry goes on without it. */
const COMMAND_TIMEOUT_MS = 2_000;
/** The most ids one script call handles. */
const BATCH = 500;

/*
 * Each id is a sorted set `PREFIX:id:ID` of the routes of the nodes holding it, scored by when
 * the claim expires (Redis's own clock, so nodes' clocks do not matter). A node's claims expire
 * unless it refreshes them: the ids of a node that dies without a goodbye are free again within
 * CLAIM_TTL_MS. Scripts make each step atomic, so two nodes cannot both take an exclusive id.
 */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: ids; ARGV: route, ttl, then per key "1" (exclusive) or "0". @returns the indexes refused. */
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

/** KEYS: ids; ARGV: route. Removes this node only, so a late release never frees another node's claim. */
const RELEASE = `for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0`;

/** KEYS: ids; ARGV: route. @returns per key, the routes of the other nodes holding it now. */
const LOCATE = `${NOW}
local found = {}
for i, key in ipairs(KEYS) do
  local routes = {}
  for _, route in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
    if route ~= ARGV[1] then routes[#routes + 1] = route end
  end
  found[i] = routes
end
return found`;

interface Scripts {
  wsClaim(...args: (string | number)[]): Promise<number[]>;
  wsRelease(...args: (string | number)[]): Promise<number>;
  wsLocate(...args: (string | number)[]): Promise<string[][]>;
}

/** Options of `new RedisIds()`. */
export interface RedisIdsOptions {
  /** Where Redis is (`redis://`, `rediss://`, or a unix socket path). Default: `redis://127.0.0.1:6379`. */
  url?: string;
  /** What the keys start with: `PREFIX:id:ID`. Default: `ws-channels`. */
  prefix?: string;
}

/**
 * Ids claimed in Redis, for servers on many machines. A node whose Redis restarts empty claims
 * its ids again on reconnecting. While Redis cannot be reached, claims are granted (each node
 * still refuses a duplicate among its own connections) and made for real when it returns; an
 * exclusive id another node took meanwhile is reported to `onLost`.
 */
export class RedisIds implements IdRegistry {
  readonly route = newRoute();
  readonly #redis: Redis & Scripts;
  readonly #prefix: string;
  /** The ids this node holds, and whether each is exclusive. */
  readonly #held = new Map<string, boolean>();
  readonly #lost: ((id: string) => void)[] = [];
  readonly #timer: NodeJS.Timeout;

  /** @throws {TypeError} for options of the wrong type. */
  constructor(options: RedisIdsOptions = {}) {
    const { url = "redis://127.0.0.1:6379", prefix = "ws-channels" } = options;
    if (typeof url !== "string" || typeof prefix !== "string") throw new TypeError("url and prefix must be strings");
    this.#prefix = prefix;
    // No offline queue, and a bound on each command: a claim made while Redis is down, or does not
    // answer, is granted then rather than held.
    this.#redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: COMMAND_TIMEOUT_MS }) as Redis &
      Scripts;
    this.#redis.defineCommand("wsClaim", { lua: CLAIM });
    this.#redis.defineCommand("wsRelease", { lua: RELEASE });
    this.#redis.defineCommand("wsLocate", { lua: LOCATE });
    this.#redis.on("error", () => undefined); // it reconnects by itself; the broker reports the outage
    this.#redis.on("ready", () => void this.#refresh());
    this.#timer = setInterval(() => void this.#refresh(), REFRESH_MS).unref();
  }

  /** Waits until Redis is connected, at most `ms`. @returns whether it is. */
  ready(ms: number): Promise<boolean> {
    return this.#redis.status === "ready" ? Promise.resolve(true) : emitted(this.#redis, "ready", ms);
  }

  async claim(id: string, exclusive: boolean): Promise<boolean> {
    this.#held.set(id, exclusive);
    try {
      const refused = await this.#redis.wsClaim(1, this.#key(id), this.route, CLAIM_TTL_MS, exclusive ? "1" : "0");
      if (refused.length === 0) return true;
    } catch {
      return true; // Redis unreachable: claimed for real on the first refresh after it returns
    }
    this.#held.delete(id);
    return false;
  }

  release(id: string): void {
    if (!this.#held.delete(id)) return;
    this.#redis.wsRelease(1, this.#key(id), this.route).catch(() => undefined); // it expires by itself
  }

  async locate(ids: readonly string[]): Promise<Map<string, number[]>> {
    const found = new Map<string, number[]>();
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      const routes = await this.#redis.wsLocate(batch.length, ...batch.map((id) => this.#key(id)), this.route).catch(() => []);
      for (const [j, held] of routes.entries()) if (held.length > 0) found.set(batch[j] as string, held.map(Number));
    }
    return found;
  }

  onLost(listener: (id: string) => void): void {
    this.#lost.push(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    const held = [...this.#held.keys()];
    this.#held.clear();
    for (let i = 0; i < held.length; i += BATCH) {
      const keys = held.slice(i, i + BATCH).map((id) => this.#key(id));
      await this.#redis.wsRelease(keys.length, ...keys, this.route).catch(() => undefined);
    }
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  /** Refreshes (or, after Redis lost them, makes again) every claim of this node, in batches. */
  async #refresh(): Promise<void> {
    const held = [...this.#held];
    for (let i = 0; i < held.length; i += BATCH) {
      const batch = held.slice(i, i + BATCH);
      const keys = batch.map(([id]) => this.#key(id));
      const flags = batch.map(([, exclusive]) => (exclusive ? "1" : "0"));
      let refused: number[];
      try {
        refused = await this.#redis.wsClaim(keys.length, ...keys, this.route, CLAIM_TTL_MS, ...flags);
      } catch {
        return; // unreachable: the next `ready` tries again
      }
      for (const index of refused) {
        const [id] = batch[index - 1] as [string, boolean];
        if (!this.#held.delete(id)) continue; // released meanwhile
        for (const listener of this.#lost) listener(id);
      }
    }
  }

  #key(id: string): string {
    return `${this.#prefix}:id:${id}`;
  }
}
