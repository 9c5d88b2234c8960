/** How much a connection may have read and not yet handled, and for how long it may stay full. */
export interface BacklogLimits {
  /** Messages (TCP: chunks) waiting; at this many the connection stops being read. */
  readonly maxPending: number;
  /** Bytes of them waiting; at this many the connection stops being read. */
  readonly maxPendingBytes: number;
  /** How long a connection may stay full before it is closed (`too many pending`), in ms. */
  readonly pendingTimeout: number;
}

/** What a backlog tells the server: for the metrics, and to close a connection that stays full. */
export interface BacklogEvents {
  /** It filled up: the connection is no longer read. */
  paused(): void;
  /** It holds `bytes` now (for the largest backlog seen). */
  held(bytes: number): void;
  /** It stayed full for `pendingTimeout` ms. */
  stuck(): void;
}

/** A readable connection: a `ws` WebSocket or a `net.Socket`. */
export interface Readable {
  pause(): unknown;
  resume(): unknown;
}

/**
 * Stops reading a connection while any of its reasons holds (a full backlog, a rate limit), and
 * reads it again once none does.
 */
export class Valve {
  readonly #source: Readable;
  readonly #shut = new Set<string>();

  constructor(source: Readable) {
    this.#source = source;
  }

  shut(reason: string): void {
    if (this.#shut.size === 0) this.#source.pause();
    this.#shut.add(reason);
  }

  open(reason: string): void {
    if (this.#shut.delete(reason) && this.#shut.size === 0) this.#source.resume();
  }
}

/**
 * What one connection has read and not yet handled (messages behind a slow task: a Redis call,
 * a hook; chunks being broadcast). Full, it stops reading the connection (backpressure: the
 * client's bytes wait in the kernel and then in the client) until it drains; full for longer than
 * `pendingTimeout`, it calls `stuck`. What was already read when it filled is still handled, so
 * it holds at most its limits plus one read from the socket (64 KiB).
 */
export class Backlog {
  readonly #limits: BacklogLimits;
  readonly #valve: Valve;
  readonly #events: BacklogEvents;
  #count = 0;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: BacklogLimits, valve: Valve, events: BacklogEvents) {
    this.#limits = limits;
    this.#valve = valve;
    this.#events = events;
  }

  /** One more message of `bytes` is waiting. */
  add(bytes: number): void {
    this.#count++;
    this.#bytes += bytes;
    this.#events.held(this.#bytes);
    if (this.#timer !== undefined || !this.#full()) return;
    this.#valve.shut("backlog");
    this.#events.paused();
    this.#timer = setTimeout(() => this.#events.stuck(), this.#limits.pendingTimeout);
  }

  /** A message of `bytes` is no longer waiting. */
  remove(bytes: number): void {
    this.#count--;
    this.#bytes -= bytes;
    if (this.#timer === undefined || this.#full()) return;
    this.stop();
    this.#valve.open("backlog");
  }

  /** Forgets the timeout: the connection closed. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #full(): boolean {
    return this.#count >= this.#limits.maxPending || this.#bytes >= this.#limits.maxPendingBytes;
  }
}
