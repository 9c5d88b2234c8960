import { command } from "./resp-socket.js";

/*
 * One turn's PUBLISH commands in RESP (https://redis.io/docs/latest/develop/reference/protocol-spec/),
 * ready to leave in one write: per command a header prebuilt per channel, the message's length,
 * the message and CRLF. Small messages are copied into a slab shared by the turn's commands
 * (cheaper than a chunk of their own in a `writev`); large ones are written as they are, uncopied.
 */

/** Messages up to this size are copied into the turn's slab; larger ones are written as they are. */
const COPY_BELOW = 4096;
/** The size of a slab. */
const SLAB = 64 * 1024;
const CR = 13;
const LF = 10;
const DOLLAR = 36;

/** How many decimal digits `n` (an integer >= 0) has. */
function digitsOf(n: number): number {
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/**
 * PUBLISH's RESP up to its message, for Redis channel `name`, made once per channel by the caller:
 * its bytes as a latin1 string, one object, lighter to keep per channel than a Buffer.
 */
export function publishHeader(name: string): string {
  return Buffer.from(command(["PUBLISH", name], 1)).toString("latin1");
}

/** The most headers `PublishHeaders` keeps; past it they are made again as needed, so that memory stays bounded. */
const MAX_HEADERS = 65_536;

/** PUBLISH headers by Redis channel name, made once each, for channels that have no record of their own. */
export class PublishHeaders {
  readonly #headers = new Map<string, string>();

  of(name: string): string {
    let header = this.#headers.get(name);
    if (header === undefined) {
      if (this.#headers.size >= MAX_HEADERS) this.#headers.clear();
      header = publishHeader(name);
      this.#headers.set(name, header);
    }
    return header;
  }
}

/** Builds a turn's PUBLISH commands into as few chunks as their messages allow. */
export class RespTurn {
  #chunks: Buffer[] = [];
  #slab = Buffer.allocUnsafe(0);
  /** Where the slab's bytes not yet in a chunk start, and where its free space starts. */
  #start = 0;
  #used = 0;

  /** Adds PUBLISH of `message` on the Redis channel whose `publishHeader` is `header`. */
  publish(header: string, message: Buffer): void {
    const digits = digitsOf(message.length);
    const copy = message.length < COPY_BELOW;
    this.#room(header.length + digits + 5 + (copy ? message.length : 0));
    const slab = this.#slab;
    this.#used += slab.write(header, this.#used, "latin1");
    slab[this.#used] = DOLLAR;
    for (let i = digits, n = message.length; i > 0; i--, n = Math.floor(n / 10)) slab[this.#used + i] = 48 + (n % 10);
    this.#used += digits + 1;
    slab[this.#used++] = CR;
    slab[this.#used++] = LF;
    if (copy) {
      message.copy(this.#slab, this.#used);
      this.#used += message.length;
    } else {
      this.#cut();
      this.#chunks.push(message);
    }
    this.#slab[this.#used++] = CR;
    this.#slab[this.#used++] = LF;
  }

  /** @returns the commands added since the last call, as chunks to write in order. */
  take(): Buffer[] {
    this.#cut();
    const chunks = this.#chunks;
    this.#chunks = [];
    return chunks;
  }

  /** Makes sure the slab has `size` bytes free. A slab is never reused: its chunks may still be in a socket's queue. */
  #room(size: number): void {
    if (this.#used + size <= this.#slab.length) return;
    this.#cut();
    this.#slab = Buffer.allocUnsafe(Math.max(SLAB, size));
    this.#start = 0;
    this.#used = 0;
  }

  /** Ends the slab's current chunk. */
  #cut(): void {
    if (this.#used > this.#start) this.#chunks.push(this.#slab.subarray(this.#start, this.#used));
    this.#start = this.#used;
  }
}
