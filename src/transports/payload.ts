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
