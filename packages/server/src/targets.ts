import type { Channels } from "ws-channels";
import type { Adapter, NodeAddress } from "./adapters/adapter.js";
import type { ClientMeta } from "./client-meta.js";
import type { HeldIds } from "./ids/held.js";

/** What travels to another node, as a node message: the ids held there and the message, one JSON text. */
interface Routed {
  ids: string[];
  text: string;
}

/**
 * Targeted messages (`{"targets": [...], "payload": P}`): to this node's connections directly,
 * and to the other nodes holding a target as one node message each, through the adapter. Local ids are looked up first, so targets between two connections of one node keep
 * working while the other nodes (Redis, say) cannot be reached.
 */
export class Targets {
  readonly #channels: Channels<ClientMeta>;
  readonly #held: HeldIds;
  readonly #adapter: Adapter;
  /** Whether an id can be held on several nodes at once (verified ids): then every node is asked. */
  readonly #shared: boolean;
  #invalid = 0;

  /** Takes the messages other nodes send to this node's connections from now on. */
  constructor(channels: Channels<ClientMeta>, held: HeldIds, adapter: Adapter, shared: boolean) {
    this.#channels = channels;
    this.#held = held;
    this.#adapter = adapter;
    this.#shared = shared;
    adapter.onNodeMessage((message) => this.#deliver(message));
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
    const found = await this.#adapter.locate(ask);
    const perNode = new Map<NodeAddress, string[]>();
    for (const [id, nodes] of found) {
      for (const node of nodes) {
        const ids = perNode.get(node);
        if (ids === undefined) perNode.set(node, [id]);
        else ids.push(id);
      }
    }
    for (const [node, ids] of perNode) {
      const routed: Routed = { ids, text };
      this.#adapter.sendToNode(node, JSON.stringify(routed));
    }
    return missing.filter(([, id]) => !found.has(id)).map(([target]) => target);
  }

  /** Node messages that were not what a node sends (anyone able to write to Redis can send one): dropped. */
  get invalid(): number {
    return this.#invalid;
  }

  #deliver(message: string): void {
    const routed = parseRouted(message);
    if (routed === undefined) {
      this.#invalid++;
      return;
    }
    // the adapter located these ids here, so it holds this node's claims even if their answers are still on the way
    for (const id of routed.ids) for (const ws of this.#held.all(id) ?? []) void this.#channels.send(ws, routed.text);
  }
}

/**
 * Reads a node message as a node sends it: string ids, and a text that is one `{"from", "payload"}`
 * frame, so that no other frame (a forged say or error) reaches a client this way.
 * @returns undefined for anything else.
 */
function parseRouted(message: string): Routed | undefined {
  try {
    const routed = JSON.parse(message) as Partial<Routed> | null;
    if (routed === null || typeof routed !== "object" || !Array.isArray(routed.ids) || typeof routed.text !== "string") return undefined;
    if (!routed.ids.every((id) => typeof id === "string")) return undefined;
    const frame = JSON.parse(routed.text) as Record<string, unknown> | null;
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return undefined;
    const keys = Object.keys(frame);
    if (keys.length !== 2 || keys[0] !== "from" || keys[1] !== "payload") return undefined;
    return routed as Routed;
  } catch {
    return undefined; // not JSON
  }
}
