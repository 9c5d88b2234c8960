import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";
import { type Bound, listen } from "../address.js";
import { type Authenticate, type Identity, query } from "../auth.js";
import type { HeldIds } from "../ids/held.js";
import type { HttpHandler } from "../page/serve.js";
import type { Slots } from "../slots.js";
import { closeRefused, GOING_AWAY } from "./close-codes.js";
import { Heartbeat } from "./heartbeat.js";
import { createListener, type TlsFiles } from "./listener.js";
import { Session, type SessionServices } from "./session.js";
import { admit, refuse } from "./upgrade.js";

/** Where the WebSocket listener binds, and who it lets in. */
export interface AdmissionSettings {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** PEM certificate and key: serve `wss://` (Node's `https`). */
  readonly tls: TlsFiles | undefined;
  /** The largest message a client may send, in bytes; larger: close 1009 (by `ws`). */
  readonly maxFrameSize: number;
  /** How often every connection is pinged, in ms. */
  readonly pingInterval: number;
  /** How much longer than `pingInterval` a connection may stay silent before it is terminated, in ms. */
  readonly pingTimeout: number;
  /** Origins a browser's upgrade may come from (as `origins()` returns them), or `"*"` for any. */
  readonly allowedOrigins: readonly string[] | "*";
  /** Verifies each client at the upgrade; undefined: anyone, known by its `?id=` if it gives one. */
  readonly authenticate: Authenticate | undefined;
  /** How long `authenticate` may take to answer, in ms; past it: 401. */
  readonly hookTimeout: number;
  /** Whether the page is served: its own origin (the request's `Host`) is then let in whatever `allowedOrigins` says. */
  readonly page: boolean;
}

/**
 * The WebSocket listener (HTTP, or HTTPS with TLS) and who gets in: a connection slot (per IP and
 * per node) as the upgrade request arrives, refused with close 1008 `too many connections` after
 * the handshake without asking `authenticate`; the origin and the token (refused with HTTP 403 or
 * 401 before any WebSocket opens); then the id claim. Each admitted connection is handed to a `Session`, and watched by the heartbeat.
 * Call `listen()`, then `close()` to shut down.
 */
export class Admission {
  readonly #settings: AdmissionSettings;
  readonly #held: HeldIds;
  readonly #services: SessionServices;
  readonly #log: Logger;
  readonly #slots: Slots;
  /** Upgrades being verified: shutdown destroys them, whatever `authenticate` is doing. */
  readonly #upgrading = new Set<Duplex>();
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #heartbeat: Heartbeat;

  /**
   * @param slots the node's connection slots, shared with the TCP port.
   * @param held this node's ids, where each connection's id is claimed.
   * @param services what every session shares.
   * @param http answers plain HTTP requests (the page, or 426).
   * @throws {Error} naming `tls.cert` or `tls.key` for a certificate or key that is not PEM, or that do not match.
   */
  constructor(settings: AdmissionSettings, slots: Slots, held: HeldIds, services: SessionServices, log: Logger, http: HttpHandler) {
    this.#settings = settings;
    this.#slots = slots;
    this.#held = held;
    this.#services = services;
    this.#log = log;
    this.#http = createListener(settings.tls, http);
    this.#http.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(request, socket, head));
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: settings.maxFrameSize, perMessageDeflate: false });
    this.#heartbeat = new Heartbeat(settings.pingInterval, settings.pingTimeout);
  }

  /** Starts listening. @returns the bound address (port 0 gives a free port). */
  listen(): Promise<Bound> {
    return listen(this.#http, this.#settings.host, this.#settings.port);
  }

  /**
   * Stops accepting at once, drops the upgrades still being verified, closes every connection with
   * 1001, and waits for them to close, at most `graceMs` ms before the rest are terminated.
   */
  async close(graceMs: number): Promise<void> {
    this.#heartbeat.stop();
    for (const socket of this.#upgrading) socket.destroy();
    const stopped = new Promise((resolve) => this.#http.close(resolve));
    const clients = [...this.#wss.clients];
    const closed = clients.map((ws) => new Promise((resolve) => ws.once("close", resolve)));
    for (const ws of clients) ws.close(GOING_AWAY.code, GOING_AWAY.reason);
    const timer = setTimeout(() => {
      for (const ws of clients) ws.terminate();
      this.#http.closeAllConnections();
    }, graceMs);
    await Promise.all([stopped, ...closed, new Promise((resolve) => this.#wss.close(resolve))]);
    clearTimeout(timer);
  }

  /**
   * Open connections, ids in use, distinct clients (IPv4 addresses, IPv6 /64s) and the connection
   * slots they hold (WebSocket, upgrades being verified, TCP), now.
   */
  stats(): { connections: number; ids: number; addresses: number; slots: number } {
    const { total, clients } = this.#slots.taken;
    return { connections: this.#wss.clients.size, ids: this.#held.size, addresses: clients, slots: total };
  }

  /**
   * Takes a slot for an upgrade as it arrives, then admits or refuses it (origin, then token)
   * before any WebSocket is opened; one past a limit is let in only to be closed 1008.
   */
  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const address = request.socket.remoteAddress ?? "";
    const slot = this.#slots.take(address);
    if (typeof slot === "string") {
      const refuse = (ws: WebSocket): void => closeRefused(ws, "too_many_connections", address, this.#services.refused, slot);
      return this.#wss.handleUpgrade(request, socket, head, refuse);
    }
    socket.once("close", slot);
    const ignore = (): void => undefined; // a client that resets while it is being verified
    socket.on("error", ignore);
    this.#upgrading.add(socket);
    void admit(request, this.#settings)
      .then((verdict) => {
        if (!this.#upgrading.delete(socket) || socket.destroyed) return; // dropped at shutdown, or gone
        if (!verdict.admitted) {
          this.#services.refused(verdict.reason, address, verdict.detail);
          return refuse(socket, verdict.status);
        }
        this.#wss.handleUpgrade(request, socket, head, (ws) => this.#connect(ws, request, verdict.identity));
        socket.off("error", ignore);
      })
      .catch(() => socket.destroy()); // a bug here costs this one upgrade, never the process
  }

  #connect(ws: WebSocket, request: IncomingMessage, identity: Identity | undefined): void {
    const { refused } = this.#services;
    const address = request.socket.remoteAddress ?? "";
    ws.on("error", (error: Error & { code?: string }) => {
      // `ws` closes the connection itself (1009, 1007, 1002); the others carry on
      if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") refused("message_too_big", address);
      else if (error.code?.startsWith("WS_ERR_")) refused("invalid_frame", address, error.code);
    });
    // With authentication the id is the verified one, and `?id=` is ignored.
    const id = identity === undefined ? query(request).get("id") || undefined : identity.id;
    // A claim across nodes takes a round trip: the session's messages wait behind it.
    const claimed = id === undefined ? undefined : this.#held.claim(id, ws, identity === undefined);
    this.#heartbeat.watch(ws, () => this.#log.debug({ address }, "terminated a silent connection"));
    new Session(ws, address, id, identity, claimed, this.#services);
  }
}
