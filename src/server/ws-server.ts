import { createServer, type IncomingMessage, type Server } from "node:http";
import WebSocket, { WebSocketServer } from "ws";
import type { Channels } from "../channels.js";
import { type Bound, listen } from "./address.js";
import type { ClientMeta } from "./client-meta.js";
import { type Command, parseCommand } from "./protocol.js";

/** Close codes and reasons the server sends (4000-4999 would be private; 3000 is the protocol's own). */
export const CLOSE = {
  goingAway: { code: 1001, reason: "server shutting down" },
  internalError: { code: 1011, reason: "internal error" },
  idInUse: { code: 1008, reason: "id in use" },
  rateLimit: { code: 1008, reason: "rate limit" },
  tooManyConnections: { code: 1008, reason: "too many connections" },
  invalidPayload: { code: 3000, reason: "invalid payload" },
  notAMember: { code: 3000, reason: "cannot send to channel" },
} as const;

export interface WsProtocolServerOptions {
  host: string;
  port: number;
  /** The largest message a client may send, in bytes; larger: close 1009 (by `ws`). */
  maxFrameSize: number;
  /** The longest channel name, in characters; longer: close 3000 `invalid payload`. */
  maxChannelLength: number;
  /** Channels one connection may be in; a join past it: `{"error": "too many channels"}`. */
  maxChannelsPerConnection: number;
  /** Open connections from one IP address; past it: close 1008 `too many connections`. */
  maxConnectionsPerIp: number;
  /** Messages one connection may send per second (and in a burst); past it: close 1008 `rate limit`. */
  maxMessagesPerSecond: number;
}

/** One connection: its socket, its id if it gave one, and its rate-limit bucket. */
interface Client {
  readonly ws: WebSocket;
  readonly id: string | undefined;
  tokens: number;
  refilled: number;
  /** Past the rate: its close is queued and later messages are dropped. */
  limited: boolean;
}

/**
 * The WebSocket JSON protocol on top of a `Channels`: join, leave, say to a channel, and targeted
 * messages to connection ids given as `/?id=ID`. Call `listen()`, then `close()` to shut down.
 * Everything the server writes goes through `channels.send` or `channels.broadcast`, so what a
 * connection receives leaves in the order the server decided it, even behind a sliced fan-out.
 */
export class WsProtocolServer {
  readonly #channels: Channels<ClientMeta>;
  readonly #options: WsProtocolServerOptions;
  readonly #ids = new Map<string, WebSocket>();
  readonly #perAddress = new Map<string, number>();
  readonly #http: Server;
  readonly #wss: WebSocketServer;

  constructor(channels: Channels<ClientMeta>, options: WsProtocolServerOptions) {
    this.#channels = channels;
    this.#options = options;
    this.#http = createServer((_, response) => response.writeHead(426, { Connection: "close" }).end("Upgrade Required\n"));
    this.#wss = new WebSocketServer({ server: this.#http, maxPayload: options.maxFrameSize, perMessageDeflate: false });
    this.#wss.on("connection", (ws, request) => this.#connect(ws, request));
    this.#wss.on("error", () => undefined); // re-emitted listen errors: `listen()` reports them
  }

  /** Starts listening. @returns the bound address (port 0 gives a free port). */
  listen(): Promise<Bound> {
    return listen(this.#http, this.#options.host, this.#options.port);
  }

  /**
   * Stops accepting at once, closes every connection with 1001, and waits for them to close, at
   * most `graceMs` ms before the rest are terminated.
   */
  async close(graceMs: number): Promise<void> {
    const stopped = new Promise((resolve) => this.#http.close(resolve));
    const clients = [...this.#wss.clients];
    const closed = clients.map((ws) => new Promise((resolve) => ws.once("close", resolve)));
    for (const ws of clients) ws.close(CLOSE.goingAway.code, CLOSE.goingAway.reason);
    const timer = setTimeout(() => {
      for (const ws of clients) ws.terminate();
      this.#http.closeAllConnections();
    }, graceMs);
    await Promise.all([stopped, ...closed, new Promise((resolve) => this.#wss.close(resolve))]);
    clearTimeout(timer);
  }

  /** Open connections, ids in use, and distinct client addresses, now. */
  stats(): { connections: number; ids: number; addresses: number } {
    return { connections: this.#wss.clients.size, ids: this.#ids.size, addresses: this.#perAddress.size };
  }

  #connect(ws: WebSocket, request: IncomingMessage): void {
    ws.on("error", () => undefined); // `ws` closes the connection itself; the others carry on
    const address = request.socket.remoteAddress ?? "";
    const open = (this.#perAddress.get(address) ?? 0) + 1;
    this.#perAddress.set(address, open);
    ws.once("close", () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
    if (open > this.#options.maxConnectionsPerIp) return ws.close(CLOSE.tooManyConnections.code, CLOSE.tooManyConnections.reason);
    const url = request.url ?? "";
    const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
    const id = new URLSearchParams(query).get("id") || undefined;
    if (id !== undefined) {
      if (this.#ids.has(id)) return ws.close(CLOSE.idInUse.code, CLOSE.idInUse.reason);
      this.#ids.set(id, ws);
      ws.once("close", () => this.#ids.delete(id));
    }
    const client: Client = { ws, id, tokens: this.#options.maxMessagesPerSecond, refilled: performance.now(), limited: false };
    const inOrder = serial(() => ws.close(CLOSE.internalError.code, CLOSE.internalError.reason));
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (client.limited) return;
      if (this.#withinRate(client)) return inOrder(() => this.#receive(client, data, isBinary));
      client.limited = true; // closed after the replies already queued, like every other close
      inOrder(() => ws.close(CLOSE.rateLimit.code, CLOSE.rateLimit.reason));
    });
  }

  /** A token bucket: `maxMessagesPerSecond` tokens, refilled continuously; a message takes one. */
  #withinRate(client: Client): boolean {
    const rate = this.#options.maxMessagesPerSecond;
    const now = performance.now();
    client.tokens = Math.min(rate, client.tokens + ((now - client.refilled) * rate) / 1000);
    client.refilled = now;
    if (client.tokens < 1) return false;
    client.tokens--;
    return true;
  }

  #receive(client: Client, data: Buffer, isBinary: boolean): Promise<void> | void {
    const { ws } = client;
    if (ws.readyState !== WebSocket.OPEN) return;
    const command = isBinary ? undefined : parseCommand(data.toString("utf8"), this.#options.maxChannelLength);
    if (command === undefined) return ws.close(CLOSE.invalidPayload.code, CLOSE.invalidPayload.reason);
    return this.#run(client, command);
  }

  #run({ ws, id }: Client, command: Command): Promise<void> | void {
    const channels = this.#channels;
    // Re-encoding what JSON.parse accepted can still throw (nesting deeper than the stack):
    // such a message is as invalid as any other.
    const encode = (value: unknown): string | undefined => {
      try {
        return JSON.stringify(value);
      } catch {
        ws.close(CLOSE.invalidPayload.code, CLOSE.invalidPayload.reason);
        return undefined;
      }
    };
    switch (command.kind) {
      case "join": {
        const channel = command.channel;
        if (!channels.member(channel, ws) && channels.channelsOf(ws).length >= this.#options.maxChannelsPerConnection) {
          return this.#reply(ws, { error: "too many channels", join: channel });
        }
        return channels
          .tryJoin(channel, ws, { id })
          .then((joined) => this.#reply(ws, joined ? { joined: channel } : { error: "forbidden", join: channel }));
      }
      case "leave":
        channels.leave(command.channel, ws);
        return this.#reply(ws, { left: command.channel });
      case "say": {
        if (!channels.member(command.channel, ws)) return ws.close(CLOSE.notAMember.code, CLOSE.notAMember.reason);
        const text = encode({ to: command.channel, say: command.say });
        if (text === undefined) return;
        return channels.broadcast(command.channel, text).then(
          () => undefined,
          () => undefined, // rejected only once channels are closed, during shutdown
        );
      }
      case "targets": {
        const text = encode(command.payload);
        return text === undefined ? undefined : this.#sendTo(ws, command.targets, text);
      }
    }
  }

  /**
   * Sends a reply in order with the broadcasts to the connection, and resolves once it is written:
   * the connection's next message waits for it, so a later close cannot overtake it.
   */
  #reply(ws: WebSocket, reply: object): Promise<void> {
    return this.#channels.send(ws, JSON.stringify(reply)).then(() => undefined);
  }

  #sendTo(sender: WebSocket, targets: readonly (string | number)[], text: string): Promise<void> | void {
    const seen = new Set<string>();
    const unknown: (string | number)[] = [];
    for (const target of targets) {
      const id = String(target);
      const ws = this.#ids.get(id);
      if (ws === undefined) unknown.push(target);
      else if (!seen.has(id)) void this.#channels.send(ws, text);
      seen.add(id);
    }
    if (unknown.length > 0) return this.#reply(sender, { error: "unknown targets", targets: unknown });
  }
}

/**
 * Runs tasks one after another: a task that returns a promise holds back the ones after it until
 * it settles, so replies leave a connection in the order its messages came in. A task that throws
 * or rejects calls `onError` instead of taking the process down.
 */
function serial(onError: () => void): (task: () => Promise<void> | void) => void {
  let tail: Promise<void> | undefined;
  const guarded = (task: () => Promise<void> | void): Promise<void> | void => {
    try {
      return task()?.catch(onError);
    } catch {
      return onError();
    }
  };
  return (task) => {
    if (tail === undefined) {
      const wait = guarded(task);
      if (wait === undefined) return;
      tail = wait;
    } else {
      tail = tail.then(() => guarded(task));
    }
    const mine = tail;
    void mine.then(() => {
      if (tail === mine) tail = undefined;
    });
  };
}
