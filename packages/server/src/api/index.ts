import type { Channels } from "ws-channels";
import type { Adapter } from "../adapters/adapter.js";
import type { Bound } from "../address.js";
import type { ClientMeta } from "../client-meta.js";
import type { HeldIds } from "../ids/held.js";
import type { Settings } from "../settings.js";
import type { Targets } from "../targets.js";
import type { JoinHistory } from "../ws/caller.js";
import type { ServerPresence } from "../ws/presence.js";
import { Nodes } from "./nodes.js";
import { type ApiObserver, ApiServer } from "./server.js";

/** The server's parts the API acts on. */
export interface ApiParts {
  readonly adapter: Adapter;
  readonly channels: Channels<ClientMeta>;
  readonly held: HeldIds;
  readonly targets: Targets;
  readonly presence: ServerPresence;
  readonly history: JoinHistory | undefined;
}

/**
 * A server's part in the server API: its answers to the other nodes' questions whenever it has
 * other nodes (another node's API may ask), and its own API listener when `settings.api` is
 * given. A process alone without the API keeps nothing (no membership observer).
 */
export class ServerApi {
  readonly #nodes: Nodes | undefined;
  readonly #server: ApiServer | undefined;
  readonly #at: { host: string; port: number } | undefined;

  constructor(settings: Settings, parts: ApiParts, observe: ApiObserver) {
    const { adapter, channels, held, targets, presence, history } = parts;
    const { api } = settings;
    if (api === undefined && settings.spread === undefined) return;
    const nodes = new Nodes(adapter, channels, held);
    this.#nodes = nodes;
    if (api === undefined) return;
    this.#at = api;
    const services = { channels, history: history?.store, historySize: settings.history?.size ?? 0, targets, presence, nodes };
    this.#server = new ApiServer(api, services, settings.log, observe);
  }

  /** Starts the listener. @returns where it listens; undefined when it is off. */
  async listen(): Promise<Bound | undefined> {
    return this.#at && this.#server?.listen(this.#at.host, this.#at.port);
  }

  /** Stops the listener and no longer answers the other nodes. */
  async close(): Promise<void> {
    this.#nodes?.close();
    await this.#server?.close();
  }
}
