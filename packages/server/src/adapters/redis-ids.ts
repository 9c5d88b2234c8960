import type { Redis } from "ioredis";
import type { RedisConnections } from "ws-channels/redis";
import type { IdClaims, NodeAddress } from "./adapter.js";
import { CLAIM, LOCATE, RELEASE, type Scripts } from "./redis-id-scripts.js";

/** How long a claim lives in Redis unless its node refreshes it, in ms. */
export const CLAIM_TTL_MS = 10_000;
/** How often a node refreshes its claims, in ms. */
export const REFRESH_MS = 3_000;
/** The most ids one script call handles. */
const BATCH = 500;

/** One claim of an id by this node: a refused or failed claim removes its own token, never a later claim's. */
interface Claim {
  readonly exclusive: boolean;
  readonly token: number;
}

/**
 * Ids claimed in Redis, for servers on many machines. A node whose Redis restarts empty claims
 * its ids again on reconnecting. While Redis cannot be reached, claims are granted (each node
 * still refuses a duplicate among its own connections) and made for real when it returns; an
 * exclusive id another node took meanwhile is reported to `onLost`. A claim Redis fails while
 * connected (an error reply, no answer in time) rejects: it is never granted silently.
 */
export class RedisIds implements IdClaims {
  readonly #connections: RedisConnections;
  readonly #redis: Redis & Scripts;
  readonly #node: NodeAddress;
  /** The ids this node holds, each with its latest claim. */
  readonly #held = new Map<string, Claim>();
  readonly #lost: ((id: string) => void)[] = [];
  readonly #timer: NodeJS.Timeout;
  #tokens = 0;
  /** The refresh running now, if any: refreshes never overlap. */
  #refreshing: Promise<void> | undefined;
  /** A refresh was asked for while one ran: run another once it ends. */
  #again = false;
  #closed = false;

  /** Claims for node `node` on the commands connection of `connections`, under its prefix. */
  constructor(connections: RedisConnections, node: NodeAddress) {
    this.#connections = connections;
    this.#node = node;
    this.#redis = connections.commands as Redis & Scripts;
    this.#redis.defineCommand("wsClaim", { lua: CLAIM });
    this.#redis.defineCommand("wsRelease", { lua: RELEASE });
    this.#redis.defineCommand("wsLocate", { lua: LOCATE });
    this.#redis.on("ready", this.#onReady);
    this.#timer = setInterval(this.#onReady, REFRESH_MS).unref();
  }

  /** @throws {Error} (rejects) if Redis, connected, fails the claim: the caller must not let the connection in. */
  async claim(id: string, exclusive: boolean): Promise<boolean> {
    const claim: Claim = { exclusive, token: ++this.#tokens };
    this.#held.set(id, claim);
    // unreachable: granted, and claimed for real by the first refresh once Redis is back
    if (this.#redis.status !== "ready") return true;
    let refused: number[];
    try {
      refused = await this.#redis.wsClaim(1, this.#key(id), this.#node, CLAIM_TTL_MS, exclusive ? "1" : "0");
    } catch (error) {
      this.#forget(id, claim);
      this.#connections.unanswered(error);
      throw error instanceof Error ? error : new Error(String(error));
    }
    if (refused.length === 0) return true;
    this.#forget(id, claim);
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

  /**
   * Refreshes (or, after Redis lost them, makes again) every claim of this node, in batches of
   * BATCH ids. Called while one runs, it runs once more after it, never alongside.
   * @returns when every claim has been refreshed, or Redis could not be reached.
   */
  refresh(): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#again = true;
      return this.#refreshing;
    }
    const running = (async () => {
      do {
        this.#again = false;
        await this.#refreshAll();
      } while (this.#again && !this.#closed);
    })();
    this.#refreshing = running.finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Releases every claim of this node; the connections are their owner's. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#redis.off("ready", this.#onReady);
    await this.#refreshing;
    const held = [...this.#held.keys()];
    this.#held.clear();
    for (let i = 0; i < held.length; i += BATCH) {
      const keys = held.slice(i, i + BATCH).map((id) => this.#key(id));
      await this.#redis.wsRelease(keys.length, ...keys, this.#node).catch(() => undefined);
    }
  }

  readonly #onReady = (): void => {
    if (!this.#closed) void this.refresh();
  };

  /**
   * One pass over the claims held when it starts. Each batch is taken when it is sent, from the
   * claims still held then: an id released meanwhile is not claimed again (its release, sent
   * after, would come too late to undo that), and only the claim refreshed is forgotten if refused.
   */
  async #refreshAll(): Promise<void> {
    const ids = [...this.#held.keys()];
    for (let i = 0; i < ids.length && !this.#closed; i += BATCH) {
      const batch: [string, Claim][] = [];
      for (const id of ids.slice(i, i + BATCH)) {
        const claim = this.#held.get(id);
        if (claim !== undefined) batch.push([id, claim]);
      }
      if (batch.length === 0) continue;
      const keys = batch.map(([id]) => this.#key(id));
      const flags = batch.map(([, claim]) => (claim.exclusive ? "1" : "0"));
      let refused: number[];
      try {
        refused = await this.#redis.wsClaim(keys.length, ...keys, this.#node, CLAIM_TTL_MS, ...flags);
      } catch (error) {
        this.#connections.unanswered(error);
        return; // unreachable: the next `ready` tries again
      }
      for (const index of refused) {
        const [id, claim] = batch[index - 1] as [string, Claim];
        if (this.#forget(id, claim)) for (const listener of this.#lost) listener(id);
      }
    }
  }

  /** Forgets `claim` of `id` if it is still the latest. @returns whether it was. */
  #forget(id: string, claim: Claim): boolean {
    if (this.#held.get(id) !== claim) return false; // released meanwhile, or claimed again since
    this.#held.delete(id);
    return true;
  }

  #key(id: string): string {
    return this.#connections.name("id", id);
  }
}
