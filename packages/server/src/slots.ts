import { clientKey } from "./address.js";

/** Why a connection got no slot: its address has its share, or the node is full. */
export type Full = "per IP" | "on this node";

/**
 * The node's connection slots, shared by the WebSocket and TCP listeners: at most `maxPerIp`
 * from one client (an IPv4 address or an IPv6 /64, see `clientKey`) and `maxTotal` in all. A
 * WebSocket connection takes its slot when its upgrade request arrives, so upgrades still being
 * authenticated count too.
 */
export class Slots {
  readonly #maxPerIp: number;
  readonly #maxTotal: number;
  readonly #perClient = new Map<string, number>();
  #total = 0;

  /** @param maxPerIp per client; @param maxTotal on this node (both integers >= 1). */
  constructor(maxPerIp: number, maxTotal: number) {
    this.#maxPerIp = maxPerIp;
    this.#maxTotal = maxTotal;
  }

  /** Slots taken, and distinct clients holding them, now. */
  get taken(): { total: number; clients: number } {
    return { total: this.#total, clients: this.#perClient.size };
  }

  /**
   * Takes a slot for a connection from `address`.
   * @returns a function that gives it back (once, however often it is called), or why there is none.
   */
  take(address: string): (() => void) | Full {
    const key = clientKey(address);
    const held = this.#perClient.get(key) ?? 0;
    if (held >= this.#maxPerIp) return "per IP";
    if (this.#total >= this.#maxTotal) return "on this node";
    this.#perClient.set(key, held + 1);
    this.#total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#total--;
      const left = (this.#perClient.get(key) ?? 1) - 1;
      if (left === 0) this.#perClient.delete(key);
      else this.#perClient.set(key, left);
    };
  }
}
