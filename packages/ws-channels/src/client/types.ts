/** A connection's state, as `Client.state` and the `state` event tell it. */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * A WebSocket constructor: the browser's global `WebSocket`, or on Node 20 the default export of
 * `ws`. Only `new Ctor(url)` and the WHATWG members (`onopen`, `onmessage`, `onclose`,
 * `onerror`, `readyState`, `send`, `close`) are used.
 */
export type WebSocketConstructor = new (url: string) => unknown;

/** A token, or a function that reads one (called before every connection attempt and refresh). */
export type TokenSource = string | (() => string | Promise<string>);

/** `new Client(url, options)`'s options; every field is optional. */
export interface ClientOptions {
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (browsers, Node >= 22). */
  readonly WebSocket?: WebSocketConstructor;
  /** The connection's id, sent as `?id=` (ignored by a server that verifies tokens). */
  readonly id?: string;
  /** A JWT sent as `?token=`; a function is called before every attempt, and for `refresh`. */
  readonly token?: TokenSource;
  /** Quiet time, in ms, after which the client sends `{"ping": N}`. Default 5,000. */
  readonly pingAfter?: number;
  /** Time without any frame, in ms, after which the connection counts as dead. Default 10,000. */
  readonly timeout?: number;
  /** Says and sends that may wait for a connection. Default 100. */
  readonly maxQueued?: number;
  /** How long, in ms, a say or send may wait for a connection before its promise rejects. Default 10,000. */
  readonly queueTimeout?: number;
  /** How long, in ms, before the token's expiry a token function is asked for a refresh. Default 60,000. */
  readonly refreshBefore?: number;
}

/** The `state` event: the new state, with the close that caused it and the next attempt's delay. */
export interface StateEvent {
  readonly state: ClientState;
  /** Failed attempts since the server last replied (0 once a connection has answered). */
  readonly attempt: number;
  /** With `reconnecting`: ms until the next attempt. */
  readonly delay?: number;
  /** The close code that caused the change (RFC 6455 section 7.4), if a close did. */
  readonly code?: number;
  /** The close reason, or why the client stopped. */
  readonly reason?: string;
}

/** A say in a channel, as a room's `message` event gives it. */
export interface RoomMessage {
  readonly say: unknown;
  /** The sender's id, set by the server; absent when the sender has none. */
  readonly from?: string;
  /** Its offset in the channel, with history on (`--history-size`). */
  readonly offset?: number;
}

/** One connection in a channel: presence's entry. */
export interface PresenceEntry {
  readonly ref: string;
  readonly id: string | null;
  readonly info?: Readonly<Record<string, unknown>>;
}

/** A room's `presence` event: the entries that really came and went (none when only `room.partial` changed). */
export interface PresenceChange {
  readonly joins: readonly PresenceEntry[];
  readonly leaves: readonly PresenceEntry[];
}

/** A room's `joined` event, at every join and rejoin. */
export interface JoinedEvent {
  /** Whether every say since the last one seen came back (`missed`); false: reload the room's state. */
  readonly recovered: boolean;
  /** The says missed while away, in order; each is also emitted as a `message` right after. */
  readonly missed: readonly RoomMessage[];
}

/** Why a room stopped: a refused join (`forbidden`, `too many channels`, ...), or the client closed. */
export interface RoomClosedEvent {
  readonly reason: string;
}

/** A targeted message, as the client's `message` event gives it. */
export interface TargetedMessage {
  /** The sender's id, set by the server; null when the sender has none. */
  readonly from: string | null;
  readonly payload: unknown;
}

/** `client.join(channel, options)`'s options. */
export interface JoinOptions {
  /** Keep `room.members()` and get `presence` events. Default false. */
  readonly presence?: boolean;
  /** On a rejoin, ask for the says missed since the last one seen (a server with history). Default true. */
  readonly recover?: boolean;
}

/** The client's events. */
export interface ClientEvents {
  state: StateEvent;
  message: TargetedMessage;
  /** An error reply that belongs to no pending call (an expired refresh, say). */
  error: { readonly error: string };
}

/** A room's events. */
export interface RoomEvents {
  joined: JoinedEvent;
  message: RoomMessage;
  presence: PresenceChange;
  closed: RoomClosedEvent;
}
