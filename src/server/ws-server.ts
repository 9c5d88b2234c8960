import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import WebSocket, { WebSocketServer } from "ws";
import type { Channels } from "../channels.js";
import type { Adapter } from "./adapters/adapter.js";
import { type Bound, listen } from "./address.js";
import { type Identity, mayJoin, query } from "./auth.js";
import type { ClientMeta } from "./client-meta.js";
import { Heartbeat } from "./heartbeat.js";
import { HeldIds } from "./ids/held.js";
import { createListener, type TlsFiles } from "./listener.js";
import type { RefusalReason } from "./metrics.js";
import { type Command, parseCommand } from "./protocol.js";
import { TokenBucket } from "./rate.js";
import { serial } from "./serial.js";
import { Targets } from "./targets.js";
import { type Admission, admit, refuse } from "./upgrade.js";

/** Close codes and reasons the server sends (4000-4999 would be private; 3000 is the protocol's own). */
export const CLOSE = {
  goingAway: { code: 1001, reason: "server shutting down" },
  internalError: { code: 1011, reason: "internal error" },
  idInUse: { code: 1008, reason: "id in use" },
  rateLimit: { code: 1008, reason: "rate limit" },
  tooManyConnections: { code: 1008, reason: "too many connections" },
  tokenExpired: { code: 1008, reason: "token expired" },
  invalidPayload: { code: 3000, reason: "invalid payload" },
  notAMember: { code: 3000, reason: "cannot send to channel" },
} as const;

/** The longest delay `setTimeout` takes, in ms (about 24.8 days); an expiry further off waits in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
  /** How often every connection is pinged, in ms. */
  pingInterval: number;
  /** How much longer than `pingInterval` a connection may stay silent before it is terminated, in ms. */
  pingTimeout: number;
  /** Which origins and clients may open a WebSocket. */
  admission: Admission;
  /** PEM certificate and key: serve `wss://` (Node's `https`). */
  tls?: TlsFiles | undefined;
  log: Logger;
  /** Where ids are claimed and found across nodes, and how targeted messages reach other nodes. */
  adapter: Adapter;
  /** Told of every refusal, to count and log it. */
  refused: (reason: RefusalReason, address: string, detail?: string) => void;
}

/** One connection: its socket, its id, the channels it may join, and its rate-limit bucket. */
interface Client {
  readonly ws: WebSocket;
  readonly id: string | undefined;
  readonly address: string;
  readonly channels: readonly string[] | undefined;
  readonly rate: TokenBucket;
  /** Past the rate: its close is queued and later messages are dropped. */
  limited: boolean;
}

/**
 * The WebSocket JSON protocol on top of a `Channels`: join, leave, say to a channel, and targeted
 * messages to connection ids. Call `listen()`, then `close()` to shut down. Everything the server
 * writes goes through `channels.send` or `channels.broadcast`, so what a connection receives
 * leaves in the order the server decided it, even behind a sliced fan-out.
 */
export class WsProtocolServer {
  readonly #channels: Channels<ClientMeta>;
  readonly #options: WsProtocolServerOptions;
  readonly #ids: HeldIds;
  readonly #targets: Targets;
  readonly #perAddress = new Map<string, number>();
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #heartbeat: Heartbeat;

  /** @throws {Error} naming `tls.cert` or `tls.key` for a certificate or key that is not PEM, or that do not match. */
  constructor(channels: Channels<ClientMeta>, options: WsProtocolServerOptions) {
    this.#channels = channels;
    this.#options = options;
    const upgradeRequired = (_: IncomingMessage, response: ServerResponse): void => {
      response.writeHead(426, { Connection: "close" }).end("Upgrade Required\n");
    };
    this.#http = createListener(options.tls, upgradeRequired);
    this.#http.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(request, socket, head));
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameSize, perMessageDeflate: false });
    this.#heartbeat = new Heartbeat(options.pingInterval, options.pingTimeout);
    this.#ids = new HeldIds(options.adapter, (ws) => this.#close(ws, "", "id_in_use", CLOSE.idInUse));
    this.#targets = new Targets(channels, this.#ids, options.adapter, options.admission.authenticate !== undefined);
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
    this.#heartbeat.stop();
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

  /** Admits or refuses an upgrade (origin, then token) before any WebSocket is opened. */
  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const ignore = (): void => undefined; // a client that resets while it is being verified
    socket.on("error", ignore);
    void admit(request, this.#options.admission)
      .then((verdict) => {
        if (!verdict.admitted) {
          this.#options.refused(verdict.reason, request.socket.remoteAddress ?? "", verdict.detail);
          return refuse(socket, verdict.status);
        }
        this.#wss.handleUpgrade(request, socket, head, (ws) => this.#connect(ws, request, verdict.identity));
        socket.off("error", ignore);
      })
      .catch(() => socket.destroy()); // a bug here costs this one upgrade, never the process
  }

  #connect(ws: WebSocket, request: IncomingMessage, identity: Identity | undefined): void {
    const address = request.socket.remoteAddress ?? "";
    ws.on("error", (error: Error & { code?: string }) => {
      // `ws` closes the connection itself (1009, 1007, 1002); the others carry on
      if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") this.#options.refused("message_too_big", address);
      else if (error.code?.startsWith("WS_ERR_")) this.#options.refused("invalid_frame", address, error.code);
    });
    const open = (this.#perAddress.get(address) ?? 0) + 1;
    this.#perAddress.set(address, open);
    ws.once("close", () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
    if (open > this.#options.maxConnectionsPerIp) return this.#close(ws, address, "too_many_connections", CLOSE.tooManyConnections);
    // With authentication the id is the verified one, and `?id=` is ignored.
    const id = identity === undefined ? query(request).get("id") || undefined : identity.id;
    // A claim across nodes takes a round trip: the connection's messages wait behind it.
    const claimed = id === undefined ? undefined : this.#ids.claim(id, ws, identity === undefined);
    this.#heartbeat.watch(ws, () => this.#options.log.debug({ address }, "terminated a silent connection"));
    const client: Client = {
      ws,
      id,
      address,
      channels: identity?.channels,
      rate: new TokenBucket(this.#options.maxMessagesPerSecond),
      limited: false,
    };
    const inOrder = serial(() => ws.close(CLOSE.internalError.code, CLOSE.internalError.reason));
    if (claimed !== undefined) {
      inOrder(() =>
        claimed.then((granted) => {
          if (!granted) this.#close(ws, address, "id_in_use", CLOSE.idInUse);
        }),
      );
    }
    if (identity?.expiresAt !== undefined) this.#expireAt(client, identity.expiresAt, inOrder);
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (client.limited) return;
      if (client.rate.take()) return inOrder(() => this.#receive(client, data, isBinary));
      client.limited = true; // closed after the replies already queued, like every other close
      inOrder(() => this.#close(ws, address, "rate_limit", CLOSE.rateLimit));
    });
  }

  /** Closes the connection 1008 `token expired` once `expiresAt` (ms since the epoch) passes. */
  #expireAt(client: Client, expiresAt: number, inOrder: (task: () => void) => void): void {
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const left = expiresAt - Date.now();
      if (left > 0) {
        timer = setTimeout(check, Math.min(left, MAX_TIMER_MS));
        return;
      }
      inOrder(() => this.#close(client.ws, client.address, "token_expired", CLOSE.tokenExpired));
    };
    check();
    client.ws.once("close", () => clearTimeout(timer));
  }

  /** Counts and logs a refusal, then closes the connection with its code. */
  #close(ws: WebSocket, address: string, reason: RefusalReason, { code, reason: text }: { code: number; reason: string }): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    this.#options.refused(reason, address);
    ws.close(code, text);
  }

  #receive(client: Client, data: Buffer, isBinary: boolean): Promise<void> | void {
    const { ws } = client;
    if (ws.readyState !== WebSocket.OPEN) return;
    const command = isBinary ? undefined : parseCommand(data.toString("utf8"), this.#options.maxChannelLength);
    if (command === undefined) return this.#close(ws, client.address, "invalid_payload", CLOSE.invalidPayload);
    return this.#run(client, command);
  }

  #run(client: Client, command: Command): Promise<void> | void {
    const { ws, id, address } = client;
    const channels = this.#channels;
    // Re-encoding what JSON.parse accepted can still throw (nesting deeper than the stack):
    // such a message is as invalid as any other.
    const encode = (value: unknown): string | undefined => {
      try {
        return JSON.stringify(value);
      } catch {
        this.#close(ws, address, "invalid_payload", CLOSE.invalidPayload);
        return undefined;
      }
    };
    switch (command.kind) {
      case "join": {
        const channel = command.channel;
        if (!channels.member(channel, ws) && channels.channelsOf(ws).length >= this.#options.maxChannelsPerConnection) {
          this.#options.refused("too_many_channels", address);
          return this.#reply(ws, { error: "too many channels", join: channel });
        }
        const forbidden = (): Promise<void> => {
          this.#options.refused("forbidden", address);
          return this.#reply(ws, { error: "forbidden", join: channel });
        };
        if (!mayJoin(client.channels, channel)) return forbidden();
        return channels.tryJoin(channel, ws, { id }).then((joined) => (joined ? this.#reply(ws, { joined: channel }) : forbidden()));
      }
      case "leave":
        channels.leave(command.channel, ws);
        return this.#reply(ws, { left: command.channel });
      case "say": {
        if (!channels.member(command.channel, ws)) return this.#close(ws, address, "not_a_member", CLOSE.notAMember);
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

  /** Sends `text` to every connection of each listed id, on any node; reports the ids connected nowhere. */
  async #sendTo(sender: WebSocket, targets: readonly (string | number)[], text: string): Promise<void> {
    const unknown = await this.#targets.send(targets, text);
    if (unknown.length > 0) return this.#reply(sender, { error: "unknown targets", targets: unknown });
  }
}
