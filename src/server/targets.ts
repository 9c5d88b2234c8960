import type { Channels } from "../channels.js";
import type { Sendable } from "../transports/index.js";
import type { ClientMeta } from "./client-meta.js";
import type { HeldIds } from "./ids/held.js";
import type { IdRegistry } from "./ids/registry.js";

/** What travels to another node's route: the ids held there and the message, one JSON text. */
interface Routed {
  ids: string[];
  text: string;
}

/**
 * Targeted messages (`{"targets": [...], "payload": P}`): to this node's connections directly,
 * and to the other nodes holding a target through their routes, numeric channels that no client
 * can join. Local ids are looked up first, so targets between two connections of one node keep
 * working while the registry (Redis, say) is down.
 */
export class Targets {
  readonly #channels: Channels<ClientMeta>;
  readonly #held: HeldIds;
  readonly #registry: IdRegistry;
  /** Whether an id can be held on several nodes at once (verified ids): then every node is asked. */
  readonly #shared: boolean;
  /** This node's end of its route: hands each routed message to the connections holding its ids. */
  readonly #sink: Sendable = { send: (data) => this.#deliver(data) };

  constructor(channels: Channels<ClientMeta>, held: HeldIds, registry: IdRegistry, shared: boolean) {
    this.#channels = channels;
    this.#held = held;
    this.#registry = registry;
    this.#shared = shared;
  }

  /** Starts taking targeted messages from other nodes. @returns once the route's subscription is acknowledged. */
  async listen(): Promise<void> {
    this.#channels.join(this.#registry.route, this.#sink);
    await this.#channels.subscribed(this.#registry.route);
  }

  /**
   * Sends `text` to every connection of each listed id, on whichever node, once per id.
   * @returns the targets connected nowhere, as given (duplicates included).
   */
  async send(targets: readonly (string | number)[], text: string): Promise<(string | number)[]> {
    const seen = new Set<string>();
    const missing: [string | number, string][] = [];
    for (const target of targets) {
      const id = String(target);
      const holders = this.#held.get(id);
      if (holders === undefined) missing.push([target, id]);
      else if (!seen.has(id)) for (const ws of holders) void this.#channels.send(ws, text);
      seen.add(id);
    }
    const ask = this.#shared ? [...seen] : [...new Set(missing.map(([, id]) => id))];
    if (ask.length === 0) return [];
    const found = await this.#registry.locate(ask);
    const perRoute = new Map<number, string[]>();
    for (const [id, routes] of found) {
      for (const route of routes) {
        const ids = perRoute.get(route);
        if (ids === undefined) perRoute.set(route, [id]);
        else ids.push(id);
      }
    }
    for (const [route, ids] of perRoute) {
      const routed: Routed = { ids, text };
      this.#channels.broadcast(route, JSON.stringify(routed)).catch(() => undefined); // rejects only during shutdown
    }
    return missing.filter(([, id]) => !found.has(id)).map(([target]) => target);
  }

  #deliver(data: string | Uint8Array): void {
    let routed: Routed;
    try {
      routed = JSON.parse(typeof data === "string" ? data : Buffer.from(data).toString("utf8")) as Routed;
    } catch {
      return; // not from a ws-channels server of this version: nothing to deliver
    }
    if (!Array.isArray(routed.ids) || typeof routed.text !== "string") return;
    // the registry routed these ids here, so it holds this node's claims even if their answers are still on the way
    for (const id of routed.ids) for (const ws of this.#held.all(String(id)) ?? []) void this.#channels.send(ws, routed.text);
  }
}
