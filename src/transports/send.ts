import type { Payload } from "./payload.js";

/** Anything with `send(data)`: a browser-style WebSocket, an SSE response wrapper, a test double. */
export interface Sendable {
  send(data: string | Uint8Array): unknown;
  readonly readyState?: number;
}

const OPEN = 1;

/**
 * Hands the message, as the caller gave it, to `send`. Returns false when the member reports a
 * numeric `readyState` other than open (1), as WebSocket-like objects do.
 */
export function writeSendable(member: Sendable, payload: Payload): boolean {
  if (typeof member.readyState === "number" && member.readyState !== OPEN) return false;
  member.send(payload.data);
  return true;
}
