import type { Channels, HistoryPosition } from "ws-channels";
import type { HistoryStore } from "../adapters/history-store.js";
import type { ClientMeta } from "../client-meta.js";
import type { Targets } from "../targets.js";
import type { ServerPresence } from "../ws/presence.js";
import type { Nodes } from "./nodes.js";
import type { MethodName } from "./schemas.js";

/** What the API's methods act on: the server's own parts, shared with its WebSocket side. */
export interface ApiServices {
  readonly channels: Channels<ClientMeta>;
  /** Undefined: history is off. */
  readonly history: HistoryStore | undefined;
  /** The most says a channel keeps (what `history` returns at most). */
  readonly historySize: number;
  readonly targets: Targets;
  readonly presence: ServerPresence;
  readonly nodes: Nodes;
}

/** A method's refusal: the HTTP status and the `{"error": {"code", "message"}}` it answers. */
export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The page size of `channels` when the body gives none. */
const DEFAULT_PAGE = 100;

// Bodies as the schemas let them through: every field checked before a method runs.
type Body = Record<string, unknown>;

/**
 * Says `data` into `channel` as the server: `{"to": CH, "say": data}` with no `from`, through the
 * history store (which numbers it) when history is on, else through `Channels` (and its broker).
 */
async function publish(services: ApiServices, channel: string, data: unknown): Promise<Partial<HistoryPosition>> {
  if (services.history === undefined) {
    services.channels.broadcast(channel, JSON.stringify({ to: channel, say: data })).catch(() => undefined); // rejected only during shutdown
    return {};
  }
  const position = await services.history.publish(channel, JSON.stringify({ say: data }));
  if (position === undefined) throw new ApiFailure(503, "unavailable", "the history store did not keep the say: try again");
  return { offset: position.offset, epoch: position.epoch };
}

/** One handler per method: a body checked by its schema in, a result matching its schema out. */
export const METHODS: { readonly [M in MethodName]: (services: ApiServices, body: Body) => Promise<object> } = {
  publish: (services, { channel, data }) => publish(services, channel as string, data),

  async broadcast(services, { channels, data }) {
    const results = [];
    for (const channel of channels as string[]) results.push({ channel, ...(await publish(services, channel, data)) });
    return { results };
  },

  async send(services, { targets, payload }) {
    const unknown = await services.targets.send(targets as string[], JSON.stringify({ from: null, payload }));
    return { unknown };
  },

  async presence(services, { channel }) {
    const { entries, partial } = await services.presence.entries(channel as string);
    return { members: entries, partial };
  },

  async presence_stats(services, { channel }) {
    const { entries, partial } = await services.presence.entries(channel as string);
    // a connection without an id is a user of its own, as in presence counts
    const users = new Set(entries.map((entry) => entry.id ?? entry));
    return { connections: entries.length, users: users.size, partial };
  },

  async history(services, { channel, since, limit }) {
    if (services.history === undefined) throw new ApiFailure(400, "history_off", "history is off: start the server with --history-size");
    const most = Math.min((limit as number | undefined) ?? services.historySize, services.historySize);
    try {
      return await services.history.read(channel as string, since as HistoryPosition | undefined, most);
    } catch {
      throw new ApiFailure(503, "unavailable", "the history store cannot be reached: try again");
    }
  },

  async disconnect(services, { id }) {
    return { closed: await services.nodes.disconnect(id as string) };
  },

  async channels(services, { prefix = "", cursor, limit = DEFAULT_PAGE }) {
    const after = cursor === undefined ? "" : Buffer.from(cursor as string, "base64url").toString("utf8");
    const page = await services.nodes.channels({ prefix: prefix as string, after, limit: limit as number });
    const last = page.channels.at(-1)?.name;
    return { channels: page.channels, ...(page.more && last !== undefined && { cursor: Buffer.from(last).toString("base64url") }) };
  },
};
