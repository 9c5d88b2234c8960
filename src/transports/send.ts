import type { Payload } from "./payload.js";

/** Anything with `send(data)`: a browser-style WebSocket, an SSE response wrapper, a test double. */
export interface Sendable {
  send(data: string | Uint8Array): unknown;
  readonly readyState?: number;
}

const OPEN = 1;

/** Whether the member reports a numeric `readyState` other than open (1), as WebSocket-like objects do. */
export function sendableClosed(member: Sendable): boolean {
  return typeof member.readyState === "number" && member.readyState !== OPEN;
}

/**
 * Hands the message, as the caller gave it, to `send`. Returns false for a closed member. A `send`
 * that returns a promise is not awaited; if that promise rejects, `onLateFailure` is called.
 */
export function writeSendable(member: Sendable, payload: Payload, onLateFailure: (member: Sendable) => void): boolean {
  if (sendableClosed(member)) return false;
  const sent = member.send(payload.data) as PromiseLike<unknown> | undefined;
  if (typeof sent?.then === "function") sent.then(undefined, () => onLateFailure(member));
  return true;
}
