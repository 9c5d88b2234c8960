import type { RedisConnections } from "./redis-connections.js";
import { command, RespSocket } from "./resp-socket.js";

/*
 * The broker's subscribing connection, in RESP read here: a message's channel name and bytes are
 * found in the chunk they came in and handed on as offsets, so that the broker can drop its own
 * echo, or hand on a view, before anything is allocated. ioredis, per message, decodes an array
 * of two new Buffers and converts the channel name to a string twice.
 */

const CR = 13;
const STAR = 42;
const DOLLAR = 36;
const COLON = 58;
const MINUS = 45;
const PLUS = 43;
/** The lengths of the first word of the pushes told apart: "message", "subscribe", "pong". */
const MESSAGE = 7;
const SUBSCRIBE = 9;
const PONG = 4;

/** What the subscriber tells its owner. */
export interface SubscriberEvents {
  /** The connection is open and authenticated, with no subscription: subscribe to the live set. */
  ready(): void;
  /** The connection closed: every subscription is gone (waiting ones resolved false). */
  closed(): void;
  /** A message: the Redis channel's name is `bytes[nameStart, nameEnd)`, the message `bytes[at, end)`. */
  message(bytes: Buffer, nameStart: number, nameEnd: number, at: number, end: number): void;
}

/** A SUBSCRIBE waiting for its acknowledgements, one per name. */
interface Waiting {
  left: number;
  resolve(acknowledged: boolean): void;
}

/**
 * The broker's subscribing connection (a `RespSocket`). While idle it sends a PING every
 * `timeoutMs`; a SUBSCRIBE or PING unanswered for `timeoutMs` drops the node's connections, as
 * for any command.
 */
export class RedisSubscriber {
  readonly #socket: RespSocket;
  readonly #events: SubscriberEvents;
  /** SUBSCRIBE commands waiting for acknowledgements, oldest first from `#head`. */
  #waiting: Waiting[] = [];
  #head = 0;
  #pings = 0;
  /** When the oldest unanswered command was sent, or the last answer came (ms, performance.now()). */
  #progressAt = 0;
  /** A reply that has not all arrived: its chunks so far, their length, and the length it needs when known. */
  #parts: Buffer[] = [];
  #partsLength = 0;
  #need = 0;
  /** Where the last item read ended, and the number or length it had. */
  #at = 0;
  #value = 0;
  readonly #timeoutMs: number;

  constructor(connections: RedisConnections, events: SubscriberEvents) {
    this.#events = events;
    this.#timeoutMs = connections.timeoutMs;
    const own = { ready: events.ready, data: this.#onData, closed: this.#closed, waited: this.#waited };
    this.#socket = new RespSocket(connections, own, "subscribing connection");
  }

  get ready(): boolean {
    return this.#socket.ready;
  }

  /** Whether the connection is being opened (the owner subscribes to its live set once it is ready). */
  get connecting(): boolean {
    return this.#socket.connecting;
  }

  /** @returns a promise of true once Redis has acknowledged every name, false if the connection closes first (or is closed now). */
  subscribe(names: readonly string[]): Promise<boolean> {
    if (names.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      if (!this.#send(["SUBSCRIBE", ...names], () => this.#waiting.push({ left: names.length, resolve }))) resolve(false);
    });
  }

  /** Unsubscribes from `names`; a closed connection is subscribed to nothing anyway. */
  unsubscribe(names: readonly string[]): void {
    if (names.length > 0) this.#send(["UNSUBSCRIBE", ...names]);
  }

  /** Closes the connection for good (which unsubscribes from everything). */
  async end(): Promise<void> {
    await this.#socket.end();
  }

  /** How long the oldest command has waited for its answer; after `timeoutMs` idle, sends a PING (the health check). */
  readonly #waited = (now: number): number => {
    if (this.#pings > 0 || this.#head < this.#waiting.length) return now - this.#progressAt;
    if (now - this.#progressAt >= this.#timeoutMs) this.#send(["PING"], () => this.#pings++);
    return 0;
  };

  /** @returns false if the connection is not open. */
  #send(words: string[], sent?: () => void): boolean {
    const socket = this.#socket.socket;
    if (socket === undefined) return false;
    if (this.#pings === 0 && this.#head === this.#waiting.length) this.#progressAt = performance.now();
    socket.write(command(words));
    sent?.();
    return true;
  }

  readonly #onData = (chunk: Buffer): void => {
    let bytes = chunk;
    if (this.#partsLength > 0) {
      this.#parts.push(chunk);
      this.#partsLength += chunk.length;
      if (this.#partsLength < this.#need) return; // a large message still arriving: joined once, when whole
      bytes = Buffer.concat(this.#parts, this.#partsLength);
    }
    this.#need = 0;
    let at = 0;
    while (at < bytes.length) {
      const next = this.#reply(bytes, at);
      if (next === -1) break;
      at = next;
    }
    if (this.#need > 0) this.#need -= at;
    this.#parts = at < bytes.length ? [bytes.subarray(at)] : [];
    this.#partsLength = bytes.length - at;
  };

  /** Handles the reply at `at`. @returns where the next starts, or -1 if it has not all arrived. */
  #reply(bytes: Buffer, at: number): number {
    const type = bytes[at];
    if (!this.#line(bytes, at + 1)) return -1;
    if (type === MINUS) this.#answered(false); // a SUBSCRIBE refused (an ACL, say)
    if (type === PLUS) this.#ponged(); // PING's answer while subscribed to nothing
    if (type !== STAR) return this.#at;
    const count = this.#value;
    let kind = 0;
    let nameStart = 0;
    let nameEnd = 0;
    let i = this.#at;
    for (let k = 0; k < count; k++) {
      const item = bytes[i];
      if (item === undefined || !this.#line(bytes, i + 1)) return -1;
      i = this.#at;
      if (item === COLON) continue;
      if (item !== DOLLAR) return -1; // not RESP2's pub/sub: wait, and the timeout drops the connection
      const length = this.#value;
      if (i + length + 2 > bytes.length) {
        this.#need = i + length + 2;
        return -1;
      }
      if (k === 0) kind = length;
      else if (k === 1) {
        nameStart = i;
        nameEnd = i + length;
      } else if (kind === MESSAGE) this.#events.message(bytes, nameStart, nameEnd, i, i + length);
      i += length + 2;
    }
    if (kind === SUBSCRIBE) this.#answered(true);
    else if (kind === PONG) this.#ponged(); // PING's answer while subscribed: ["pong", ""]
    return i;
  }

  #ponged(): void {
    this.#pings = Math.max(0, this.#pings - 1);
    this.#progressAt = performance.now();
  }

  /** One acknowledgement of the oldest SUBSCRIBE (an error answers all of it). */
  #answered(acknowledged: boolean): void {
    const waiting = this.#waiting[this.#head];
    this.#progressAt = performance.now();
    if (waiting === undefined) return;
    if (acknowledged && --waiting.left > 0) return;
    this.#head++;
    if (this.#head === this.#waiting.length || this.#head >= 1024) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    waiting.resolve(acknowledged);
  }

  /** Reads `<integer>\r\n` at `at` into `#value`, and where the next item starts into `#at`. @returns false if it has not all arrived. */
  #line(bytes: Buffer, at: number): boolean {
    let n = 0;
    let sign = 1;
    for (let i = at; i < bytes.length; i++) {
      const c = bytes[i] as number;
      if (c === CR) {
        if (i + 1 >= bytes.length) return false;
        this.#value = sign * n;
        this.#at = i + 2;
        return true;
      }
      if (c === MINUS && i === at) sign = -1;
      else n = n * 10 + c - 48;
    }
    return false;
  }

  /** The connection closed: its subscriptions are gone, and so are the acknowledgements owed. */
  readonly #closed = (): void => {
    const waiting = this.#waiting.slice(this.#head);
    this.#waiting = [];
    this.#head = 0;
    this.#pings = 0;
    this.#parts = [];
    this.#partsLength = 0;
    for (const { resolve } of waiting) resolve(false);
    this.#events.closed();
  };
}
