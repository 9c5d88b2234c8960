import type { RedisConnections } from "./redis-connections.js";
import { RespSocket } from "./resp-socket.js";
import { RespTurn } from "./resp-turn.js";

/*
 * A node's publishing connection, in RESP written here: a turn's PUBLISH commands leave in one
 * write (`RespTurn`), and each reply is one line, counted without a Promise or an object per
 * command. ioredis, kept for everything else, allocates per command a Command with its Promise,
 * copies a Buffer argument and decodes each `:1` reply: most of what a publish cost.
 */

const LF = 10;
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
 * The broker's publishing connection (a `RespSocket`). Publishes in flight when it closes are
 * answered `published: false`; if Redis leaves one unanswered for `timeoutMs`, the node's
 * connections are dropped as for any command.
 */
export class RedisPublisher {
  readonly #socket: RespSocket;
  readonly #events: PublisherEvents;
  /** Per command in flight, oldest first from `#head`: how many envelopes and bytes it carries. */
  #envelopes: number[] = [];
  #bytes: number[] = [];
  #head = 0;
  /** Whether the next byte read starts a reply, and whether the reply being read is an error. */
  #lineStart = true;
  #failed = false;
  readonly #turn = new RespTurn();
  #flushing = false;
  /** When the oldest unanswered command was sent, or the last reply came (ms, performance.now()). */
  #oldestAt = 0;

  constructor(connections: RedisConnections, events: PublisherEvents) {
    this.#events = events;
    const waited = (now: number): number => (this.inFlight === 0 ? 0 : now - this.#oldestAt);
    this.#socket = new RespSocket(
      connections,
      { ready: events.ready, data: this.#onData, closed: this.#closed, waited },
      "publishing connection",
    );
  }

  get ready(): boolean {
    return this.#socket.ready;
  }

  /** Commands sent and not answered. */
  get inFlight(): number {
    return this.#envelopes.length - this.#head;
  }

  /**
   * Sends PUBLISH of `message` on the Redis channel whose `publishHeader` is `header`, in this
   * turn's write. Call only while `ready`.
   * @param envelopes how many envelopes `message` carries, and `bytes` how many bytes of them, as
   *   `answered` will report them.
   */
  publish(header: string, message: Buffer, envelopes: number, bytes: number): void {
    this.#turn.publish(header, message);
    if (this.inFlight === 0) this.#oldestAt = performance.now();
    this.#envelopes.push(envelopes);
    this.#bytes.push(bytes);
    if (!this.#flushing) {
      this.#flushing = true;
      process.nextTick(this.#flush);
    }
  }

  /** Writes what is queued, then closes the connection for good once Redis has answered it. */
  async end(): Promise<void> {
    this.#flush();
    await this.#socket.end();
  }

  readonly #flush = (): void => {
    this.#flushing = false;
    const chunks = this.#turn.take();
    const socket = this.#socket.socket;
    if (socket === undefined) return; // closed meanwhile: #closed answered them
    if (chunks.length === 1) socket.write(chunks[0] as Buffer);
    else {
      socket.cork();
      for (const chunk of chunks) socket.write(chunk);
      socket.uncork();
    }
  };

  /** Counts replies: one line each; an error reply (`-...`) is a PUBLISH Redis refused. */
  readonly #onData = (chunk: Buffer): void => {
    this.#oldestAt = performance.now(); // a reply came: once per chunk, not per reply
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
      this.#reply(!refused);
    }
  };

  #reply(published: boolean): void {
    const envelopes = this.#envelopes[this.#head] as number;
    const bytes = this.#bytes[this.#head] as number;
    this.#head++;
    if (this.#head === this.#envelopes.length) {
      // new arrays: setting `length` would be a call into V8's runtime each time the queue empties
      this.#envelopes = [];
      this.#bytes = [];
      this.#head = 0;
    } else if (this.#head >= 4096) {
      this.#envelopes = this.#envelopes.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#head = 0;
    }
    this.#events.answered(envelopes, bytes, published);
  }

  /** The connection closed: what was not sent, and what is in flight, is answered unpublished. */
  readonly #closed = (): void => {
    this.#lineStart = true;
    this.#turn.take();
    while (this.inFlight > 0) this.#reply(false);
    this.#events.closed();
  };
}
