/**
 * One broadcast's message, encoded at most once whatever the number of members: the UTF-8 bytes
 * for byte-stream members and the WebSocket frame for `ws` members are made on first use and then
 * shared by every member.
 */
export class Payload {
  /** True for a binary message (a `Buffer` or `Uint8Array`), false for text (a `string`). */
  readonly binary: boolean;
  /** The WebSocket frame, filled in by the `ws` transport the first time it needs it. */
  frame: Buffer | undefined;
  #data: string | Uint8Array | undefined;
  #bytes: Buffer | undefined;

  /** @param data a `string` is text; a `Buffer` or `Uint8Array` is binary. */
  constructor(data: string | Uint8Array) {
    this.#data = data;
    this.binary = typeof data !== "string";
  }

  /**
   * A message that arrived as bytes (from a broker): text when `binary` is false, in which case
   * `data` decodes the string only if some member asks for it.
   */
  static fromBytes(bytes: Buffer, binary: boolean): Payload {
    const payload = new Payload(binary ? bytes : "");
    payload.#bytes = bytes;
    if (!binary) payload.#data = undefined;
    return payload;
  }

  /** The message as the caller gave it: a `string` for text, the bytes for binary. */
  get data(): string | Uint8Array {
    this.#data ??= (this.#bytes as Buffer).toString("utf8");
    return this.#data;
  }

  /** The message as bytes: UTF-8 for text; for binary, the caller's bytes, not copied. */
  get bytes(): Buffer {
    if (this.#bytes === undefined) {
      const data = this.#data as string | Uint8Array;
      this.#bytes =
        typeof data === "string"
          ? Buffer.from(data, "utf8")
          : Buffer.isBuffer(data)
            ? data
            : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    }
    return this.#bytes;
  }
}

/**
 * The messages of one batch, in order, for members that get every one of them: their WebSocket
 * frames, and their bytes for byte streams, are each concatenated into one buffer on first use, so a
 * member takes the whole batch in one write instead of one per message.
 */
export class Bundle {
  readonly payloads: readonly Payload[];
  #frames: Buffer | undefined;
  #bytes: Buffer | undefined;

  constructor(payloads: readonly Payload[]) {
    this.payloads = payloads;
  }

  /** Every message's frame, back to back; `frameOf` builds the frames a payload lacks. */
  frames(frameOf: (payload: Payload) => Buffer): Buffer {
    if (this.#frames === undefined) {
      const frames: Buffer[] = [];
      for (const payload of this.payloads) {
        payload.frame ??= frameOf(payload);
        frames.push(payload.frame);
      }
      this.#frames = Buffer.concat(frames);
    }
    return this.#frames;
  }

  /** Every message's bytes, back to back. */
  get bytes(): Buffer {
    this.#bytes ??= Buffer.concat(this.payloads.map((payload) => payload.bytes));
    return this.#bytes;
  }
}
