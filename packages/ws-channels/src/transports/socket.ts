import type { Socket } from "node:net";
import { corkUntilFlush } from "./cork.js";
import { DELIVERED, FAILED, type Outcome, SLOW } from "./outcome.js";
import type { Bundle, Payload } from "./payload.js";

/**
 * Writes the message's bytes to a byte stream, unless it is closed or holds more than
 * `highWaterMark` bytes unsent (this turn's corked writes included).
 */
export function writeSocket(socket: Socket, payload: Payload, highWaterMark: number): Outcome {
  if (socket.destroyed || !socket.writable) return FAILED;
  if (socket.writableLength > highWaterMark) return SLOW;
  corkUntilFlush(socket);
  socket.write(payload.bytes);
  return DELIVERED;
}

/**
 * Writes every message of `bundle` to a byte stream as one buffer, if the whole buffer keeps it
 * within `highWaterMark` bytes unsent. @returns undefined, having written nothing, if it would not.
 */
export function writeSocketBundle(socket: Socket, bundle: Bundle, highWaterMark: number): Outcome | undefined {
  if (socket.destroyed || !socket.writable) return FAILED;
  const bytes = bundle.bytes;
  if (socket.writableLength + bytes.length > highWaterMark) return undefined;
  corkUntilFlush(socket);
  socket.write(bytes);
  return DELIVERED;
}
