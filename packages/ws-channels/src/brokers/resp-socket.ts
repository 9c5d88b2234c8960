import { connect as connectNet, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import type { Redis } from "./ioredis.js";
import type { RedisConnections } from "./redis-connections.js";

/** How long after a connection drops (Redis still reachable) it is opened again, in ms. */
const REOPEN_MS = 100;
const LF = 10;
const MINUS = 45;

/** What a `RespSocket` tells its owner. */
export interface RespSocketEvents {
  /** The connection is open and authenticated. */
  ready(): void;
  /** Bytes from Redis, past the handshake's replies. */
  data(chunk: Buffer): void;
  /** The connection closed (or never opened); it opens again by itself while Redis is reachable. */
  closed(): void;
  /**
   * Asked every tenth of `timeoutMs` while the connection is ready: how long (ms) the owner's oldest
   * unanswered command has waited without an answer coming, 0 if none waits. Past `timeoutMs` the
   * node's connections are dropped, as for any command.
   */
  waited(now: number): number;
}

/**
 * A connection of the broker's own, in RESP written by its owner, to the Redis server a node's
 * `commands` connection is connected to (its path or host and port, TLS, username and password).
 * It opens at once, then follows that connection: closed when it closes, opened again when it is
 * ready, and shortly after a drop of its own while it is ready, until `end()`.
 */
export class RespSocket {
  readonly #connections: RedisConnections;
  readonly #source: Redis;
  readonly #events: RespSocketEvents;
  /** What the connection is for, in error messages. */
  readonly #what: string;
  #socket: Socket | undefined;
  #ready = false;
  #reopen: NodeJS.Timeout | undefined;
  #ended = false;
  readonly #watch: NodeJS.Timeout;
  /** When the connection being opened was started (ms, performance.now()). */
  #openedAt = 0;

  constructor(connections: RedisConnections, events: RespSocketEvents, what: string) {
    this.#connections = connections;
    this.#source = connections.commands;
    this.#events = events;
    this.#what = what;
    this.#source.on("ready", this.#open).on("close", this.drop);
    this.#connect(); // at once, beside the commands connection: a node comes up as soon as it did
    this.#watch = setInterval(
      () => {
        const now = performance.now();
        if (this.connecting && now - this.#openedAt > connections.timeoutMs) return this.drop(); // no answer to the handshake
        if (!this.#ready || events.waited(now) <= connections.timeoutMs) return;
        this.drop();
        connections.unanswered(new Error("Command timed out"));
      },
      Math.max(10, connections.timeoutMs / 10),
    ).unref(); // a command waits at most 1.1 timeouts, as ioredis's per-command timer allows
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Whether the connection is being opened (not ready yet, not closed). */
  get connecting(): boolean {
    return this.#socket !== undefined && !this.#ready;
  }

  /** The open socket, to write to; undefined while not `ready`. */
  get socket(): Socket | undefined {
    return this.#ready ? this.#socket : undefined;
  }

  /** Closes the connection (it opens again shortly, Redis reachable). */
  readonly drop = (): void => {
    this.#socket?.destroy();
  };

  /** Closes the connection for good, once Redis has answered what was written (or `timeoutMs` have passed). */
  async end(): Promise<void> {
    this.#ended = true;
    clearTimeout(this.#reopen);
    clearInterval(this.#watch);
    this.#source.off("ready", this.#open).off("close", this.drop);
    const socket = this.#socket;
    if (socket === undefined) return;
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.end();
    const timer = setTimeout(() => socket.destroy(), this.#connections.timeoutMs);
    await closed;
    clearTimeout(timer);
  }

  /** Opens the connection while Redis is reachable (the commands connection ready), unless it is open or opening, or ended. */
  readonly #open = (): void => {
    if (this.#source.status === "ready") this.#connect();
  };

  /** Connects, unless connected or connecting, or ended; authenticates as the commands connection does. */
  #connect(): void {
    if (this.#socket !== undefined || this.#ended) return;
    const { path, host = "127.0.0.1", port = 6379, tls, username, password } = this.#source.options;
    const socket = path ? connectNet(path) : tls ? connectTls({ host, port, ...tls }) : connectNet({ host, port });
    this.#socket = socket;
    this.#openedAt = performance.now();
    socket.setNoDelay(true);
    socket.on("error", (error) => this.#close(socket, error));
    socket.on("close", () => this.#close(socket, undefined));
    // Ready once Redis has answered: AUTH as the commands connection has it, then a PING (a socket
    // connects to a server that does not answer too: a stopped one, through its kernel's backlog).
    socket.once(tls && !path ? "secureConnect" : "connect", () => {
      const auth = password ? command(username ? ["AUTH", username, password] : ["AUTH", password]) : "";
      socket.write(`${auth}${command(["PING"])}`);
      let left = password ? 2 : 1;
      let reply: Buffer = Buffer.alloc(0);
      const handshake = (chunk: Buffer): void => {
        reply = reply.length === 0 ? chunk : Buffer.concat([reply, chunk]);
        for (let end = reply.indexOf(LF); end !== -1 && left > 0; end = reply.indexOf(LF)) {
          if (reply[0] === MINUS) {
            this.#close(socket, new Error(`Redis refused the ${this.#what}: ${reply.toString("latin1", 1, end).trim()}`));
            return;
          }
          reply = reply.subarray(end + 1);
          left--;
        }
        if (left > 0) return;
        socket.off("data", handshake);
        this.#opened(socket);
        if (reply.length > 0) this.#events.data(reply);
      };
      socket.on("data", handshake);
    });
  }

  #opened(socket: Socket): void {
    socket.on("data", this.#events.data);
    this.#ready = true;
    this.#events.ready();
  }

  #close(socket: Socket, error: Error | undefined): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#ready = false;
    socket.destroy();
    if (error !== undefined) this.#connections.lastError = error;
    this.#events.closed();
    if (!this.#ended && this.#reopen === undefined)
      this.#reopen = setTimeout(() => {
        this.#reopen = undefined;
        this.#open();
      }, REOPEN_MS).unref();
  }
}

/** A command in RESP: an array of bulk strings; with `more`, its head only, `more` arguments to follow. */
export function command(words: readonly string[], more = 0): string {
  return `*${words.length + more}\r\n${words.map((word) => `$${Buffer.byteLength(word)}\r\n${word}\r\n`).join("")}`;
}
