import { Connection } from "./connection.js";
import { Emitter } from "./emitter.js";
import { Outbox, Replies } from "./outbox.js";
import { Room, type RoomHost } from "./room.js";
import { expiryOf, Tokens } from "./tokens.js";
import type { ClientEvents, ClientOptions, ClientState, JoinOptions, WebSocketConstructor } from "./types.js";

/** What a browser offers to wake a client up; absent on Node. */
interface Host {
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  document?: { visibilityState?: string; addEventListener?: Host["addEventListener"]; removeEventListener?: Host["removeEventListener"] };
  WebSocket?: WebSocketConstructor;
}

/**
 * A client of the ws-channels server (docs/protocol.md) for browsers and Node: one connection
 * that reconnects with backoff, rejoins its rooms in order with recovery and presence, checks
 * liveness with pings, refreshes its token, and bounds what waits offline. See docs/client.md.
 */
export class Client extends Emitter<ClientEvents> {
  readonly #connection: Connection;
  readonly #rooms = new Map<string, Room>();
  readonly #outbox: Outbox;
  readonly #replies = new Replies();
  readonly #tokens: Tokens;
  readonly #host = globalThis as unknown as Host;
  readonly #wake = (): void => this.#connection.wake();
  readonly #visible = (): void => {
    if (this.#host.document?.visibilityState === "visible") this.#connection.wake();
  };

  /**
   * Connects to `url` (`ws://` or `wss://`) at once.
   * @throws TypeError when no WebSocket constructor is given and there is no global one, or an
   * option is out of range.
   */
  constructor(url: string, options: ClientOptions = {}) {
    super();
    const WebSocket = options.WebSocket ?? this.#host.WebSocket;
    if (typeof WebSocket !== "function") throw new TypeError("options.WebSocket: no global WebSocket here; pass one (on Node 20, ws's)");
    const ms = (name: "pingAfter" | "timeout" | "maxQueued" | "queueTimeout" | "refreshBefore", fallback: number): number => {
      const value = options[name] ?? fallback;
      if (!Number.isFinite(value) || value < 0) throw new RangeError(`options.${name}: expected a number >= 0, got ${value}`);
      return value;
    };
    const settings = { url, WebSocket, id: options.id, pingAfter: ms("pingAfter", 5_000), timeout: ms("timeout", 10_000) };
    this.#outbox = new Outbox(ms("maxQueued", 100), ms("queueTimeout", 10_000));
    this.#tokens = new Tokens(options.token, ms("refreshBefore", 60_000));
    let token: string | undefined;
    this.#connection = new Connection(settings, {
      token: async () => (token = await this.#tokens.read()),
      open: () => {
        for (const room of this.#rooms.values()) room.join();
        this.#outbox.flush((text) => this.#connection.send(text));
        this.#tokens.schedule(expiryOf(token), (fresh) => this.#sendNow({ refresh: fresh }));
      },
      frame: (frame) => this.#frame(frame),
      state: (event) => {
        if (event.state !== "open") this.#down(event.state);
        this.emit("state", event);
      },
    });
    this.#host.addEventListener?.("online", this.#wake);
    this.#host.document?.addEventListener?.("visibilitychange", this.#visible);
    this.#connection.start();
  }

  /** "connecting" (the first attempt), "open", "reconnecting" (waiting, or trying again) or "closed" (for good). */
  get state(): ClientState {
    return this.#connection.state;
  }

  /**
   * Joins `channel` now or once connected, and again on every new connection, in the order of the
   * first joins. Joining a channel already joined returns its room.
   * @param options `presence` (keep the member list), `recover` (default true: ask for missed says).
   * @throws TypeError for a channel that is not a non-empty string.
   */
  join(channel: string, options: JoinOptions = {}): Room {
    if (typeof channel !== "string" || channel.length === 0)
      throw new TypeError(`channel: expected a non-empty string, got ${String(channel)}`);
    const existing = this.#rooms.get(channel);
    if (existing !== undefined) return existing;
    const room = new Room(this.#roomHost, channel, options);
    this.#rooms.set(channel, room);
    if (this.#connection.open) room.join();
    else if (this.state === "closed") room.close("client closed");
    return room;
  }

  /**
   * Sends `payload` to every connection of each id in `ids` (`{"targets", "payload"}`), now or
   * once connected, within the offline bounds.
   * @returns a promise that resolves once the server has handled it, and rejects with an error
   * whose `reply.targets` lists the ids connected nowhere (the others got it), or when it could
   * not be sent (queue full, queue timeout, closed) or the connection dropped before the answer.
   */
  async send(ids: readonly string[], payload: unknown): Promise<void> {
    if (!Array.isArray(ids)) throw new TypeError("ids: expected an array of ids");
    const req = this.#replies.next();
    const reply = this.#replies.wait(req);
    reply.catch(() => undefined); // awaited below, once written
    // the ping after it is answered once the server has handled the targets: a pong, or an error first
    await this.#outbox
      .push([JSON.stringify({ targets: ids, payload, req }), JSON.stringify({ ping: req, req })], (text) => this.#connection.send(text))
      .catch((error: unknown) => {
        this.#replies.settle({ req, pong: req });
        throw error;
      });
    await reply;
  }

  /** Cuts the connection without a leave, as a network drop would, then reconnects as after one (for tests and demos). */
  drop(): void {
    this.#connection.drop();
  }

  /** Closes for good: no retry; rooms emit `closed`, waiting sends reject. */
  close(): void {
    this.#connection.close();
    this.#host.removeEventListener?.("online", this.#wake);
    this.#host.document?.removeEventListener?.("visibilitychange", this.#visible);
  }

  #frame(frame: Record<string, unknown>): void {
    if (this.#replies.settle(frame)) return; // a send's answer (a room's join reqs wait in the room)
    const channel = [frame.joined, frame.join, frame.to, frame.presence, frame.resync].find((name) => typeof name === "string");
    const room = typeof channel === "string" ? this.#rooms.get(channel) : undefined;
    if (room !== undefined) {
      if ("resync" in frame) room.join();
      else room.receive(frame);
    } else if ("payload" in frame && "from" in frame) {
      this.emit("message", { from: typeof frame.from === "string" ? frame.from : null, payload: frame.payload });
    } else if ("refreshed" in frame) {
      this.#tokens.schedule(frame.refreshed as number | null, (fresh) => this.#sendNow({ refresh: fresh }));
    } else if (typeof frame.error === "string" && !("join" in frame)) {
      this.emit("error", { error: frame.error });
    }
  }

  /** The connection is down: waiting replies are lost; when for good, everything stops. */
  #down(state: ClientState): void {
    this.#tokens.cancel();
    this.#replies.rejectAll(new Error("the connection dropped before the server answered"));
    if (state !== "closed") return;
    this.#outbox.rejectAll(new Error("the client is closed"));
    for (const room of [...this.#rooms.values()]) room.close("client closed");
  }

  #sendNow(frame: object): boolean {
    return this.#connection.send(JSON.stringify(frame));
  }

  readonly #roomHost: RoomHost = {
    sendNow: (frame) => this.#sendNow(frame),
    sendQueued: (frame) => this.#outbox.push([JSON.stringify(frame)], (text) => this.#connection.send(text)),
    nextReq: () => this.#replies.next(),
    forget: (room) => {
      if (this.#rooms.get(room.channel) === room) this.#rooms.delete(room.channel);
    },
  };
}
