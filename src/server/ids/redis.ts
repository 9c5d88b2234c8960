import { Redis } from "ioredis";
import { type IdRegistry, newRoute } from "./registry.js";

/** How long a claim lives in Redis unless its node refreshes it, in ms. */
export const CLAIM_TTL_MS = 10_000;
/** How often a node refreshes its claims, in ms. */
export const REFRESH_MS = 3_000;
/** The most claims refreshed by one script call. */
const BATCH = 500;

/*
 * One script claims, re-claims and refreshes: it takes each key that is free or already this
 * node's (and sets its time-to-live), and reports the ones another node holds. Atomic in Redis,
 * so two nodes cannot both take an id.
 */
const CLAIM = `
local lost = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == false or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost`;

/** Compare-and-delete: a late release cannot remove the claim another node made since. */
const RELEASE = `
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0`;

interface Scripts {
  wsClaim(...args: (string | number)[]): Promise<number[]>;
  wsRelease(...args: (string | number)[]): Promise<number>;
}

/** Options of `new RedisIds()`. */
export interface RedisIdsOptions {
  /** Where Redis is (`redis://`, `rediss://`, or a unix socket path). Default: `redis://127.0.0.1:6379`. */
  url?: string;
  /** What the claim keys start with: `PREFIX:id:ID`. Default: `ws-channels`. */
  prefix?: string;
}

/**
 * Ids claimed in Redis, for servers on many machines: `PREFIX:id:ID` holds the route of the node
 * whose connection has the id, with a time-to-live of CLAIM_TTL_MS that its node refreshes every
 * REFRESH_MS, so the ids of a node that dies without a goodbye are free again within CLAIM_TTL_MS.
 * A node whose Redis restarts empty claims its ids again on reconnecting. While Redis cannot be
 * reached, claims are granted (each node still refuses a duplicate among its own connections) and
 * made for real when it returns; an id another node took meanwhile is reported to `onLost`.
 */
export class RedisIds implements IdRegistry {
  readonly route = newRoute();
  readonly #redis: Redis & Scripts;
  readonly #prefix: string;
  readonly #held = new Set<string>();
  readonly #lost: ((id: string) => void)[] = [];
  readonly #timer: NodeJS.Timeout;

  /** @throws {TypeError} for options of the wrong type. */
  constructor(options: RedisIdsOptions = {}) {
    const { url = "redis://127.0.0.1:6379", prefix = "ws-channels" } = options;
    if (typeof url !== "string" || typeof prefix !== "string") throw new TypeError("url and prefix must be strings");
    this.#prefix = prefix;
    // No offline queue: a claim made while Redis is down is granted at once, not held.
    this.#redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 }) as Redis & Scripts;
    this.#redis.defineCommand("wsClaim", { lua: CLAIM });
    this.#redis.defineCommand("wsRelease", { lua: RELEASE });
    this.#redis.on("error", () => undefined); // reconnects by itself; the broker reports the outage
    this.#redis.on("ready", () => void this.#refresh());
    this.#timer = setInterval(() => void this.#refresh(), REFRESH_MS).unref();
  }

  async claim(id: string): Promise<boolean> {
    this.#held.add(id);
    try {
      const lost = await this.#redis.wsClaim(1, this.#key(id), this.route, CLAIM_TTL_MS);
      if (lost.length === 0) return true;
    } catch {
      return true; // Redis unreachable: claimed for real on the next refresh after it returns
    }
    this.#held.delete(id);
    return false;
  }

  release(id: string): void {
    if (!this.#held.delete(id)) return;
    this.#redis.wsRelease(1, this.#key(id), this.route).catch(() => undefined); // expires by itself
  }

  async locate(ids: readonly string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    if (ids.length === 0) return found;
    const routes = await this.#redis.mget(ids.map((id) => this.#key(id))).catch(() => [] as (string | null)[]);
    for (const [i, route] of routes.entries()) {
      if (route !== null && Number(route) !== this.route) found.set(ids[i] as string, Number(route));
    }
    return found;
  }

  onLost(listener: (id: string) => void): void {
    this.#lost.push(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    const held = [...this.#held];
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
      let lost: number[];
      try {
        lost = await this.#redis.wsClaim(batch.length, ...batch.map((id) => this.#key(id)), this.route, CLAIM_TTL_MS);
      } catch {
        return; // unreachable: the next `ready` tries again
      }
      for (const index of lost) {
        const id = batch[index - 1] as string;
        if (!this.#held.delete(id)) continue; // released meanwhile
        for (const listener of this.#lost) listener(id);
      }
    }
  }

  #key(id: string): string {
    return `${this.#prefix}:id:${id}`;
  }
}
