import type WebSocket from "ws";

/**
 * Who is known by which id, for targeted messages. An id verified by `authenticate` is a user:
 * it may hold several connections (tabs, devices, a reconnect while the old one is being reaped)
 * and a message to it reaches each. An unverified `?id=` claim is exclusive: the first live
 * connection holds it, since a second claimer would receive someone else's messages.
 */
export class Ids {
  readonly #connections = new Map<string, Set<WebSocket>>();

  /**
   * Gives `id` to `ws` until it closes.
   * @param shared true for a verified id, which other connections may hold too.
   * @returns false, and changes nothing, if the claim is exclusive and the id is held.
   */
  claim(id: string, ws: WebSocket, shared: boolean): boolean {
    const holders = this.#connections.get(id);
    if (holders !== undefined && !shared) return false;
    if (holders === undefined) this.#connections.set(id, new Set([ws]));
    else holders.add(ws);
    ws.once("close", () => {
      const held = this.#connections.get(id);
      held?.delete(ws);
      if (held?.size === 0) this.#connections.delete(id);
    });
    return true;
  }

  /** The connections holding `id` now, if any. */
  get(id: string): ReadonlySet<WebSocket> | undefined {
    return this.#connections.get(id);
  }

  /** Ids held now. */
  get size(): number {
    return this.#connections.size;
  }
}
