import WebSocket from "ws";
import type { Channels } from "ws-channels";
import type { Adapter } from "../adapters/adapter.js";
import type { ClientMeta } from "../client-meta.js";
import type { HeldIds } from "../ids/held.js";
import { DISCONNECTED } from "../ws/close-codes.js";

/** What one node asks the others for the server API, through `Adapter.ask`. */
type Question = { disconnect: string } | { channels: ChannelsPage };

/** One page of live channels: names starting with `prefix`, after `after` in code unit order, at most `limit`. */
export interface ChannelsPage {
  readonly prefix: string;
  readonly after: string;
  readonly limit: number;
}

/**
 * The server API's effects that need every node, on this node: closing an id's connections and
 * listing live channels. Each node answers the others' questions (made for every server, API on
 * or off, since the API of another node may ask), and asks them for its own API's calls.
 *
 * The live channels of this node are kept as a set of names, through `Channels.observe`.
 */
export class Nodes {
  readonly #adapter: Adapter;
  readonly #channels: Channels<ClientMeta>;
  readonly #held: HeldIds;
  readonly #live = new Set<string>();
  readonly #unobserve: () => void;

  constructor(adapter: Adapter, channels: Channels<ClientMeta>, held: HeldIds) {
    this.#adapter = adapter;
    this.#channels = channels;
    this.#held = held;
    this.#unobserve = channels.observe((channel) => {
      const name = String(channel);
      if (channels.count(name) > 0) this.#live.add(name);
      else this.#live.delete(name);
    });
    adapter.onQuestion(async (question) => this.#answer(question)); // a malformed question rejects: no answer
  }

  /**
   * Closes every connection of `id`, on every node that answers, with 4000 `disconnected`.
   * @returns how many were closed.
   */
  async disconnect(id: string): Promise<number> {
    const here = this.#disconnectHere(id);
    const answers = await this.#adapter.ask(JSON.stringify({ disconnect: id } satisfies Question));
    return answers.reduce((sum, answer) => sum + (Number(answer) || 0), here);
  }

  /**
   * One page of the channels with members on any node that answers, with their members summed.
   * @returns the page, in code unit order, and whether more may follow.
   */
  async channels(page: ChannelsPage): Promise<{ channels: { name: string; connections: number }[]; more: boolean }> {
    // each node sends its first `limit + 1`: every name of the merged first `limit + 1` is counted on every node
    const ask = { ...page, limit: page.limit + 1 };
    const answers = await this.#adapter.ask(JSON.stringify({ channels: ask } satisfies Question));
    const counts = new Map<string, number>(this.#page(ask));
    for (const answer of answers) {
      for (const [name, connections] of parsePairs(answer)) counts.set(name, (counts.get(name) ?? 0) + connections);
    }
    const names = [...counts.keys()].sort(byCodeUnits).slice(0, page.limit + 1);
    const channels = names.slice(0, page.limit).map((name) => ({ name, connections: counts.get(name) ?? 0 }));
    return { channels, more: names.length > page.limit };
  }

  /** Stops keeping this node's live channels. */
  close(): void {
    this.#unobserve();
  }

  #answer(text: string): string {
    const question = JSON.parse(text) as Question;
    if ("disconnect" in question) return String(this.#disconnectHere(String(question.disconnect)));
    return JSON.stringify(this.#page(question.channels));
  }

  #disconnectHere(id: string): number {
    let closed = 0;
    for (const ws of [...(this.#held.all(id) ?? [])]) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      ws.close(DISCONNECTED.code, DISCONNECTED.reason);
      closed++;
    }
    return closed;
  }

  /** This node's part of a page: `[name, members]` pairs. */
  #page({ prefix, after, limit }: ChannelsPage): [string, number][] {
    const names: string[] = [];
    for (const name of this.#live) if (name.startsWith(prefix) && byCodeUnits(name, after) > 0) names.push(name);
    return names
      .sort(byCodeUnits)
      .slice(0, limit)
      .map((name) => [name, this.#channels.count(name)]);
  }
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Another node's page; anything else (a node of another version, a forgery on Redis) reads as empty. */
function parsePairs(answer: string): [string, number][] {
  try {
    const pairs = JSON.parse(answer) as unknown;
    if (!Array.isArray(pairs)) return [];
    return pairs.filter((p): p is [string, number] => Array.isArray(p) && typeof p[0] === "string" && Number.isSafeInteger(p[1]));
  } catch {
    return [];
  }
}
