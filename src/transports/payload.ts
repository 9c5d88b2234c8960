/**
 * One broadcast's message, encoded at most once whatever the number of members: the UTF-8 bytes
 * for byte-stream members and the WebSocket frame for `ws` members are made on first use and then
 * shared by every member.
 */
export class Payload {
  /** The message as the caller gave it. */
  readonly data: string | Uint8Array;
  /** True for a binary message (a `Buffer` or `Uint8Array`), false for text (a `string`). */
  readonly binary: boolean;
  /** The WebSocket frame, filled in by the `ws` transport the first time it needs it. */
  frame: Buffer | undefined;
  #bytes: Buffer | undefined;

  constructor(data: string | Uint8Array) {
    this.data = data;
    this.binary = typeof data !== "string";
  }

  /** The message as bytes: UTF-8 for text; for binary, the caller's bytes, not copied. */
  get bytes(): Buffer {
    if (this.#bytes === undefined) {
      const data = this.data;
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
