import { backoffDelay, isTerminal, isTokenExpiry } from "./backoff.js";
import type { ClientState, StateEvent, WebSocketConstructor } from "./types.js";

/** What the connection uses of a WHATWG WebSocket (a browser's, or `ws`'s). */
interface Socket {
  readonly readyState: number;
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: (() => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** What the connection tells its owner. */
export interface ConnectionHandlers {
  /** Reads the token for the next attempt; undefined: none. */
  token(): Promise<string | undefined>;
  /** A connection opened: send what it needs first (rejoins), then the queued messages. */
  open(): void;
  /** A JSON object frame arrived. */
  frame(frame: Record<string, unknown>): void;
  /** The state changed. */
  state(event: StateEvent): void;
}

export interface ConnectionSettings {
  readonly url: string;
  readonly WebSocket: WebSocketConstructor;
  readonly id: string | undefined;
  readonly pingAfter: number;
  readonly timeout: number;
}

type Timer = ReturnType<typeof setTimeout>;

/**
 * One logical connection over many sockets: connects, reconnects with backoff, watches liveness
 * with `{"ping": N}`, and reports every change of state.
 */
export class Connection {
  state: ClientState = "connecting";
  readonly #settings: ConnectionSettings;
  readonly #on: ConnectionHandlers;
  #socket: Socket | undefined;
  /** Attempts that failed since a server last replied on a connection. */
  #attempt = 0;
  #retry: Timer | undefined;
  #live: Timer | undefined;
  #lastFrame = 0;
  #pinged = false;
  #pings = 0;

  constructor(settings: ConnectionSettings, handlers: ConnectionHandlers) {
    this.#settings = settings;
    this.#on = handlers;
  }

  /** Starts the first attempt. */
  start(): void {
    void this.#connect();
  }

  /** Whether a socket is open to send on. */
  get open(): boolean {
    return this.state === "open";
  }

  /** Sends `text` on the open socket. @returns false when none is open. */
  send(text: string): boolean {
    if (this.state !== "open" || this.#socket === undefined) return false;
    this.#socket.send(text);
    return true;
  }

  /** Tries again at once if waiting to reconnect (the browser came online, a tab became visible). */
  wake(): void {
    if (this.state !== "reconnecting" || this.#retry === undefined) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    void this.#connect();
  }

  /** Drops the socket as if the network had (no leave is sent) and reconnects as after any drop. */
  drop(reason = "dropped by the client"): void {
    if (this.#socket !== undefined) this.#closed(4000, reason, true);
  }

  /** Stops for good: closes the socket 1000 and retries no more. */
  close(reason = "closed by the client"): void {
    if (this.state === "closed") return;
    this.#detach(1000, reason);
    this.#stop(1000, reason);
  }

  /** Stops for good after a refusal the owner judged terminal, closing the socket with `code`. */
  #stop(code: number, reason: string): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#setState({ state: "closed", attempt: this.#attempt, code, reason });
  }

  async #connect(): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.#on.token();
    } catch (error) {
      // a failed token read is a failed attempt: retried with backoff, the reason told
      return this.#closed(1006, `token: ${error instanceof Error ? error.message : String(error)}`, false);
    }
    if (this.state === "closed") return;
    const socket = new this.#settings.WebSocket(this.#urlWith(token)) as Socket;
    this.#socket = socket;
    socket.onopen = () => {
      this.#lastFrame = Date.now();
      this.#pinged = false;
      this.#setState({ state: "open", attempt: this.#attempt });
      this.#watch();
      this.#on.open();
    };
    socket.onmessage = ({ data }) => this.#frame(data);
    socket.onclose = ({ code, reason }) => {
      if (socket === this.#socket) this.#closed(code, reason, false);
    };
    socket.onerror = () => undefined; // a close follows every error
    // a handshake that hangs counts as dead too
    this.#lastFrame = Date.now();
    this.#watch();
  }

  #urlWith(token: string | undefined): string {
    const url = new URL(this.#settings.url);
    if (this.#settings.id !== undefined) url.searchParams.set("id", this.#settings.id);
    if (token !== undefined) url.searchParams.set("token", token);
    return url.href;
  }

  #frame(data: unknown): void {
    this.#lastFrame = Date.now();
    this.#pinged = false;
    if (typeof data !== "string") return; // the protocol's frames are text
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return;
    // the server answered on this connection: only now is it known to work
    if ("joined" in frame || "pong" in frame) this.#attempt = 0;
    this.#on.frame(frame as Record<string, unknown>);
  }

  /** Liveness: after `pingAfter` ms of quiet a ping; after `timeout` ms without any frame the socket is dead. */
  #watch(): void {
    clearTimeout(this.#live);
    const { pingAfter, timeout } = this.#settings;
    const quiet = Date.now() - this.#lastFrame;
    if (quiet >= timeout) return this.#closed(4000, `no frame within ${timeout} ms`, true);
    if (quiet >= pingAfter && !this.#pinged) {
      this.#pinged = true;
      this.send(JSON.stringify({ ping: ++this.#pings }));
    }
    const due = quiet < pingAfter ? Math.min(pingAfter, timeout) : timeout;
    this.#live = setTimeout(() => this.#watch(), due - quiet);
  }

  /** The socket closed (or is given up on, `local`): stop, or wait and try again. */
  #closed(code: number, reason: string, local: boolean): void {
    if (local) this.#detach(code, reason);
    else this.#detach();
    if (this.state === "closed") return;
    // this client's own closes (4000 on a drop or a silent server) are retried
    if (!local && isTerminal(code, reason)) return this.#stop(code, reason);
    this.#attempt++;
    // an expired token is replaced at once, unless the connection it ended never got a reply
    const delay = isTokenExpiry(code, reason) && this.#attempt === 1 ? 0 : backoffDelay(this.#attempt);
    this.#setState({ state: "reconnecting", attempt: this.#attempt, delay, code, reason });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect();
    }, delay);
  }

  /** Forgets the socket, closing it with `code` if given and its handlers off, so that it reports nothing more. */
  #detach(code?: number, reason?: string): void {
    clearTimeout(this.#live);
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    if (code === undefined) return;
    try {
      socket.close(code >= 3000 || code === 1000 ? code : 1000, reason);
    } catch {
      // closing a socket that never opened may throw in some implementations: it is dropped either way
    }
  }

  /** Ends the connection for a reason the owner found terminal (the socket closed 1000). */
  fail(code: number, reason: string): void {
    this.#detach(1000, reason);
    this.#stop(code, reason);
  }

  #setState(event: StateEvent): void {
    this.state = event.state;
    this.#on.state(event);
  }
}
