import type { Socket } from "node:net";
import type { Payload } from "./payload.js";

/** Writes the message's bytes to a byte stream. Returns false if the stream can no longer be written. */
export function writeSocket(socket: Socket, payload: Payload): boolean {
  if (socket.destroyed || !socket.writable) return false;
  socket.write(payload.bytes);
  return true;
}
