import type { ChannelId } from "../types.js";
import { compareAscii, isAscii, writeAscii } from "./ascii.js";

/*
 * The envelope: one broadcast as it travels between nodes, encoded once at the origin.
 *
 *   offset  size  field
 *   0       1     version (1)
 *   1       1     flags: bit 0 binary payload, bit 1 the channel is a number
 *   2       6     origin: the publishing node's id, unsigned big-endian
 *   8       4     epoch: which of the origin's sequences for this channel (uint32 BE)
 *   12      4     seq: this broadcast's number in that sequence, from 1 (uint32 BE)
 *   16      4     channel length in bytes, n (uint32 BE)
 *   20      n     channel: UTF-8 for a string, float64 BE (n = 8) for a number
 *   20+n    rest  payload: the message's bytes as given (UTF-8 for text)
 *
 * No JSON and no base64: the payload is copied once, into the envelope, and a receiver takes it
 * back as a view of the envelope without copying.
 *
 * A batch carries several envelopes of one origin (for one channel, as one message of the broker):
 *
 *   0       1     version of a batch (2)
 *   1       1     0
 *   2       6     origin, where an envelope has it: either is told to be an echo from its first 8 bytes
 *   8       rest  per envelope: its length (uint32 BE), then the envelope
 */

const VERSION = 1;
const BATCH = 2;
/** The bytes of a batch before its first envelope's length. */
const BATCH_HEADER = 8;
const BINARY = 0b01;
const NUMBER = 0b10;
const HEADER = 20;
/** The largest origin id: 48 bits fit a float64 exactly. */
export const MAX_ORIGIN = 2 ** 48 - 1;

/**
 * Encodes one broadcast. `payload` is a string (sent as text, written as UTF-8 straight into the
 * envelope) or bytes (binary, copied once).
 * @param origin an integer from 0 to 2^48 - 1; `epoch` and `seq` integers from 0 to 2^32 - 1.
 */
export function encodeEnvelope(origin: number, epoch: number, seq: number, channel: ChannelId, payload: string | Uint8Array): Buffer {
  const isNumber = typeof channel === "number";
  const ascii = !isNumber && isAscii(channel);
  const channelBytes = isNumber ? 8 : ascii ? channel.length : Buffer.byteLength(channel, "utf8");
  const text = typeof payload === "string";
  const payloadBytes = text ? Buffer.byteLength(payload, "utf8") : payload.byteLength;
  const out = Buffer.allocUnsafe(HEADER + channelBytes + payloadBytes);
  out[0] = VERSION;
  out[1] = (text ? 0 : BINARY) | (isNumber ? NUMBER : 0);
  putUint48(out, 2, origin);
  putUint32(out, 8, epoch);
  putUint32(out, 12, seq);
  putUint32(out, 16, channelBytes);
  if (isNumber) out.writeDoubleBE(channel, HEADER);
  else if (ascii) writeAscii(channel, out, HEADER);
  else out.write(channel, HEADER, "utf8");
  const at = HEADER + channelBytes;
  if (text) out.write(payload, at, "utf8");
  else out.set(payload, at);
  return out;
}

/**
 * Where the channel of the envelope in `bytes` ends and its payload starts.
 * @returns -1 for bytes that are not an envelope (another version, truncated, a number channel not 8 bytes long).
 */
export function payloadStart(bytes: Buffer): number {
  if (bytes.length < HEADER || bytes[0] !== VERSION) return -1;
  const channelBytes = uint32(bytes, 16);
  const end = HEADER + channelBytes;
  if (end > bytes.length || (((bytes[1] as number) & NUMBER) !== 0 && channelBytes !== 8)) return -1;
  return end;
}

/** The channel of an envelope whose payload starts at `end` (see `payloadStart`), decoded. */
export function channelOf(bytes: Buffer, end: number): ChannelId {
  return ((bytes[1] as number) & NUMBER) !== 0 ? bytes.readDoubleBE(HEADER) : bytes.toString("utf8", HEADER, end);
}

/** Room to write a short channel's name, to compare it with an envelope's without making a string. */
const scratch = Buffer.allocUnsafe(384);

/**
 * Whether the channel of an envelope whose payload starts at `end` is `channel`, compared as UTF-8
 * bytes: an ASCII name in JS, unit by unit; others written as UTF-8 and compared, allocating
 * nothing for a name up to 128 UTF-16 units.
 */
export function isChannel(bytes: Buffer, end: number, channel: ChannelId): boolean {
  const isNumber = ((bytes[1] as number) & NUMBER) !== 0;
  if (typeof channel === "number") return isNumber && bytes.readDoubleBE(HEADER) === channel;
  if (isNumber) return false;
  const ascii = compareAscii(bytes, HEADER, end, channel);
  if (ascii !== undefined) return ascii;
  if (channel.length * 3 > scratch.length) return Buffer.from(channel, "utf8").equals(bytes.subarray(HEADER, end));
  const n = scratch.write(channel, 0, "utf8"); // never cut short: at most 3 bytes per UTF-16 unit
  return n === end - HEADER && bytes.compare(scratch, 0, n, HEADER, end) === 0;
}

/** Whether an envelope's payload is binary (else text). */
export function isBinary(bytes: Buffer): boolean {
  return ((bytes[1] as number) & BINARY) !== 0;
}

/** Whether the envelope or batch at `bytes[at]` was sent by `origin`: read from its first 8 bytes, allocating nothing. */
export function sentBy(bytes: Buffer, origin: number, at = 0): boolean {
  return bytes.length >= at + BATCH_HEADER && (bytes[at] === VERSION || bytes[at] === BATCH) && originOf(bytes, at) === origin;
}

/** Joins envelopes of one origin into one batch: one copy of each. @param envelopes at least one. */
export function encodeBatch(envelopes: readonly Buffer[]): Buffer {
  let size = BATCH_HEADER;
  for (const envelope of envelopes) size += 4 + envelope.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = BATCH;
  out[1] = 0;
  (envelopes[0] as Buffer).copy(out, 2, 2, 8);
  let at = BATCH_HEADER;
  for (const envelope of envelopes) {
    putUint32(out, at, envelope.length);
    envelope.copy(out, at + 4);
    at += 4 + envelope.length;
  }
  return out;
}

/**
 * Hands each envelope of a batch to `each` (views of `bytes`, not copies), or `bytes` itself when
 * it is not a batch.
 * @returns false if the batch's framing is broken (what came before the break was handed on).
 */
export function splitBatch(bytes: Buffer, each: (envelope: Buffer) => void): boolean {
  if (bytes[0] !== BATCH) {
    each(bytes);
    return true;
  }
  let at = BATCH_HEADER;
  while (at + 4 <= bytes.length) {
    const end = at + 4 + uint32(bytes, at);
    if (end > bytes.length) return false;
    each(bytes.subarray(at + 4, end));
    at = end;
  }
  return at === bytes.length && bytes.length > BATCH_HEADER;
}

/** The origin of the envelope or batch at `bytes[at]` (its bytes 2 to 8). */
export function originOf(bytes: Buffer, at = 0): number {
  return (((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) * 0x1_0000_0000 + uint32(bytes, at + 4);
}

/** An envelope's epoch (bytes 8 to 12). */
export function epochOf(bytes: Buffer): number {
  return uint32(bytes, 8);
}

/** An envelope's seq (bytes 12 to 16). */
export function seqOf(bytes: Buffer): number {
  return uint32(bytes, 12);
}

/*
 * The header's integers are read and written byte by byte in JS: optimized code (V8 11, Node 20)
 * loads a method of any Uint8Array subclass, Buffer's `readUInt32BE` say, through a generic
 * inline-cache call each time before it inlines the method, where an element is read or written
 * inline.
 */

/** The unsigned 32-bit big-endian integer at `bytes[at]`. */
function uint32(bytes: Buffer, at: number): number {
  return (
    (bytes[at] as number) * 0x100_0000 + (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number))
  );
}

/** Writes `value` (0 to 2^32 - 1) at `out[at]`, big-endian; a Uint8Array keeps each byte's low 8 bits. */
function putUint32(out: Buffer, at: number, value: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

/** Writes `value` (0 to 2^48 - 1) at `out[at]`, big-endian. */
function putUint48(out: Buffer, at: number, value: number): void {
  const high = Math.floor(value / 0x1_0000_0000);
  out[at] = high >>> 8;
  out[at + 1] = high;
  putUint32(out, at + 2, value >>> 0);
}
