import type WebSocket from "ws";
import type { IdClaims } from "../adapters/adapter.js";

/**
 * Which of this node's connections hold which id, for targeted messages, with the adapter told
 * as an id arrives on this node and leaves it. An id verified by `authenticate` is a user: it may
 * hold several connections (tabs, devices, a reconnect while the old one is being reaped), here
 * and on other nodes, and a message to it reaches each. An unverified `?id=` claim is exclusive,
 * here and on every node: a second claimer would receive someone else's messages.
 */
export class HeldIds {
  readonly #connections = new Map<string, Set<WebSocket>>();
  /** Connections whose exclusive claim the adapter has not answered yet: they hold the id here, but get nothing sent to it. */
  readonly #pending = new Set<WebSocket>();
  readonly #claims: IdClaims;
  readonly #failed: (id: string, error: unknown) => void;

  /**
   * @param lost called with each connection whose exclusive id another node took while the
   *   adapter could not tell (see `IdClaims.onLost`): it must be closed.
   * @param failed told of each claim the adapter failed (Redis answered an error), to log it.
   */
  constructor(claims: IdClaims, lost: (ws: WebSocket) => void, failed: (id: string, error: unknown) => void) {
    this.#claims = claims;
    this.#failed = failed;
    claims.onLost((id) => {
      for (const ws of this.#connections.get(id) ?? []) lost(ws);
    });
  }

  /**
   * Gives `id` to `ws` until it closes. A local duplicate of an exclusive id is refused at once;
   * the first connection of an id on this node also waits for the adapter's answer.
   * @param exclusive true for an unverified `?id=`, which no other connection may hold; false for
   *   a verified id, which other connections may hold too.
   * @returns false, and `ws` holds nothing, if the claim is exclusive and the id is held here or
   *   on another node; rejects, and `ws` holds nothing, if the adapter failed the claim (the
   *   connection must not be let in: its session closes it 1011).
   */
  claim(id: string, ws: WebSocket, exclusive: boolean): Promise<boolean> {
    const holders = this.#connections.get(id);
    if (holders !== undefined && exclusive) return Promise.resolve(false);
    if (holders !== undefined) {
      holders.add(ws);
      ws.once("close", () => this.#drop(id, ws));
      return Promise.resolve(true);
    }
    // Held here from now on, so that a local duplicate is refused while the adapter answers;
    // until it has, the connection is not a target: it may be an impostor of another node's id.
    this.#connections.set(id, new Set([ws]));
    if (exclusive) this.#pending.add(ws);
    ws.once("close", () => this.#drop(id, ws));
    return this.#claims.claim(id, exclusive).then(
      (granted) => {
        this.#pending.delete(ws);
        if (!granted) this.#drop(id, ws);
        return granted;
      },
      (error: unknown) => {
        this.#drop(id, ws);
        this.#failed(id, error);
        throw error;
      },
    );
  }

  /**
   * Every connection of this node holding `id` now, if any, also those whose claim the adapter
   * has not answered yet. A message routed here by another node may use them (the
   * adapter located it here, so it has recorded this node's claim); this node's own clients may not.
   */
  all(id: string): ReadonlySet<WebSocket> | undefined {
    return this.#connections.get(id);
  }

  /** The connections of this node holding `id` now, claim granted, if any. */
  get(id: string): ReadonlySet<WebSocket> | undefined {
    const holders = this.#connections.get(id);
    if (holders === undefined || this.#pending.size === 0) return holders;
    const granted = new Set([...holders].filter((ws) => !this.#pending.has(ws)));
    return granted.size === 0 ? undefined : granted;
  }

  /** Ids held on this node now. */
  get size(): number {
    return this.#connections.size;
  }

  #drop(id: string, ws: WebSocket): void {
    this.#pending.delete(ws);
    const holders = this.#connections.get(id);
    if (holders === undefined || !holders.delete(ws) || holders.size > 0) return;
    this.#connections.delete(id);
    this.#claims.release(id);
  }
}
