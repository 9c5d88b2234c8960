import { connect as connectNet, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import type { Redis } from "./ioredis.js";
import type { RedisConnections } from "./redis-connections.js";
import { RespTurn } from "./resp-turn.js";

/*
 * A node's publishing connection, in RESP written here: a turn's PUBLISH commands leave in one
 * write (`RespTurn`), and each reply is one line, counted without a Promise or an object per
 * command. ioredis, kept for everything else, allocates per command a Command with its Promise,
 * copies a Buffer argument and decodes each `:1` reply: most of what a publish cost.
 */

const LF = 10;
/** How long after the publishing connection drops (Redis still reachable) it is opened again, in ms. */
const REOPEN_MS = 100;
const MINUS = 45;

/** What the publisher tells its owner. */
export interface PublisherEvents {
  /** The connection is open and authenticated: publishes go out. */
  ready(): void;
  /** The connection closed (or never opened). */
  closed(): void;
  /** Redis answered one PUBLISH carrying `envelopes` envelopes of `bytes` bytes: `published` false for an error reply. */
  answered(envelopes: number, bytes: number, published: boolean): void;
}

/**
 * One connection to the Redis server a node's `commands` connection is connected to (its path or
 * host and port, TLS, username and password), which only publishes. It follows that connection:
 * open while it is ready (Redis reachable), closed when it closes, opened again shortly after a
 * drop of its own. Publishes in flight when it closes are answered `published: false`; if Redis
 * leaves one unanswered for `timeoutMs`, the node's connections are dropped as for any command.
 */
export class RedisPublisher {
  readonly #connections: RedisConnections;
  readonly #source: Redis;
  readonly #events: PublisherEvents;
  #socket: Socket | undefined;
  #ready = false;
  /** Replies to swallow before the first publish's: the handshake's (AUTH). */
  #handshake = 0;
  /** Per command in flight, oldest first from `#head`: how many envelopes and bytes it carries. */
  #envelopes: number[] = [];
  #bytes: number[] = [];
  #head = 0;
  /** Whether the next byte read starts a reply. */
  #lineStart = true;
  #failed = false;
  readonly #turn = new RespTurn();
  #flushing = false;
  /** When the oldest unanswered command was sent, or the last reply came (ms, performance.now()). */
  #oldestAt = 0;
  readonly #watch: NodeJS.Timeout;
  #reopen: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(connections: RedisConnections, events: PublisherEvents) {
    this.#connections = connections;
    this.#source = connections.commands;
    this.#events = events;
    this.#source.on("ready", this.#open).on("close", this.#drop);
    if (this.#source.status === "ready") this.#open();
    const { timeoutMs } = connections;
    this.#watch = setInterval(() => {
      if (this.inFlight === 0 || performance.now() - this.#oldestAt <= timeoutMs) return;
      this.#drop();
      connections.unanswered(new Error("Command timed out"));
    }, timeoutMs).unref();
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Commands sent and not answered. */
  get inFlight(): number {
    return this.#envelopes.length - this.#head;
  }

  /** Opens the connection, unless it is open or opening, or ended. */
  readonly #open = (): void => {
    if (this.#socket !== undefined || this.#ended || this.#source.status !== "ready") return;
    const { path, host = "127.0.0.1", port = 6379, tls, username, password } = this.#source.options;
    const socket = path ? connectNet(path) : tls ? connectTls({ host, port, ...tls }) : connectNet({ host, port });
    this.#socket = socket;
    this.#failed = false;
    socket.setNoDelay(true);
    socket.on("data", this.#onData);
    socket.on("error", (error) => this.#close(error));
    socket.on("close", () => this.#close(undefined));
    socket.once(tls && !path ? "secureConnect" : "connect", () => {
      if (password) {
        this.#handshake = 1;
        socket.write(command(username ? ["AUTH", username, password] : ["AUTH", password]));
      } else this.#opened();
    });
  };

  /** Closes the connection; what is in flight is answered unpublished. */
  readonly #drop = (): void => {
    this.#socket?.destroy();
  };

  /**
   * Sends PUBLISH of `message` on Redis channel `name`, in this turn's write. Call only while `ready`.
   * @param envelopes how many envelopes `message` carries, and `bytes` how many bytes of them, as
   *   `answered` will report them.
   */
  publish(name: string, message: Buffer, envelopes: number, bytes: number): void {
    this.#turn.publish(name, message);
    if (this.inFlight === 0) this.#oldestAt = performance.now();
    this.#envelopes.push(envelopes);
    this.#bytes.push(bytes);
    if (!this.#flushing) {
      this.#flushing = true;
      process.nextTick(this.#flush);
    }
  }

  /** Writes what is queued, then closes the connection for good once Redis has answered it (or `timeoutMs` have passed). */
  async end(): Promise<void> {
    this.#ended = true;
    clearInterval(this.#watch);
    clearTimeout(this.#reopen);
    this.#source.off("ready", this.#open).off("close", this.#drop);
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#flush();
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.end();
    const timer = setTimeout(() => socket.destroy(), this.#connections.timeoutMs);
    await closed;
    clearTimeout(timer);
  }

  readonly #flush = (): void => {
    this.#flushing = false;
    const chunks = this.#turn.take();
    const socket = this.#socket;
    if (socket === undefined || !this.#ready) return; // closed meanwhile: #close answered them
    if (chunks.length === 1) socket.write(chunks[0] as Buffer);
    else {
      socket.cork();
      for (const chunk of chunks) socket.write(chunk);
      socket.uncork();
    }
  };

  #opened(): void {
    this.#ready = true;
    this.#events.ready();
  }

  /** Counts replies: one line each; an error reply (`-...`) is a PUBLISH Redis refused. */
  readonly #onData = (chunk: Buffer): void => {
    let at = 0;
    while (at < chunk.length) {
      const error = this.#lineStart && chunk[at] === MINUS;
      const end = chunk.indexOf(LF, at);
      if (end === -1) {
        if (this.#lineStart) this.#failed = error;
        this.#lineStart = false;
        return;
      }
      const refused = this.#lineStart ? error : this.#failed;
      this.#lineStart = true;
      at = end + 1;
      if (this.#handshake > 0) {
        this.#handshake--;
        if (refused) {
          this.#close(new Error(`Redis refused the publishing connection's handshake: ${chunk.toString("latin1", 0, end).trim()}`));
          return;
        }
        if (this.#handshake === 0) this.#opened();
        continue;
      }
      this.#reply(!refused);
    }
  };

  #reply(published: boolean): void {
    const envelopes = this.#envelopes[this.#head] as number;
    const bytes = this.#bytes[this.#head] as number;
    this.#head++;
    if (this.#head === this.#envelopes.length) {
      this.#envelopes.length = this.#bytes.length = this.#head = 0;
    } else if (this.#head >= 4096) {
      this.#envelopes = this.#envelopes.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#head = 0;
    }
    this.#oldestAt = performance.now();
    this.#events.answered(envelopes, bytes, published);
  }

  #close(error: Error | undefined): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#socket = undefined;
    this.#ready = false;
    this.#handshake = 0;
    this.#lineStart = true;
    socket.destroy();
    this.#turn.take(); // not sent: answered unpublished below
    while (this.inFlight > 0) this.#reply(false);
    if (error !== undefined) this.#connections.lastError = error;
    this.#events.closed();
    if (!this.#ended && this.#reopen === undefined)
      this.#reopen = setTimeout(() => {
        this.#reopen = undefined;
        this.#open();
      }, REOPEN_MS).unref();
  }
}

/** A command in RESP: an array of bulk strings. */
function command(words: string[]): string {
  return `*${words.length}\r\n${words.map((word) => `$${Buffer.byteLength(word)}\r\n${word}\r\n`).join("")}`;
}
