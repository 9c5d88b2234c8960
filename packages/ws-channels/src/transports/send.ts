import { DELIVERED, FAILED, type Outcome, SLOW } from "./outcome.js";
import type { Payload } from "./payload.js";

/** Anything with `send(data)`: a browser-style WebSocket, an SSE response wrapper, a test double. */
export interface Sendable {
  send(data: string | Uint8Array): unknown;
  readonly readyState?: number;
  /** Bytes queued but not yet sent, if the member knows; compared with the high-water mark. */
  readonly bufferedAmount?: number;
  /** Called with (1013, "slow consumer") under the "close" slow-consumer policy, if present. */
  close?(code?: number, reason?: string): unknown;
}

const OPEN = 1;

/** Whether the member reports a numeric `readyState` other than open (1), as WebSocket-like objects do. */
export function sendableClosed(member: Sendable): boolean {
  return typeof member.readyState === "number" && member.readyState !== OPEN;
}

/**
 * Hands the message, as the caller gave it, to `send`, unless the member is closed or reports a
 * `bufferedAmount` over `highWaterMark`. A `send` that returns a promise is not awaited; if that
 * promise rejects, `onLateFailure` is called.
 */
export function writeSendable(
  member: Sendable,
  payload: Payload,
  highWaterMark: number,
  onLateFailure: (member: Sendable) => void,
): Outcome {
  if (sendableClosed(member)) return FAILED;
  if (typeof member.bufferedAmount === "number" && member.bufferedAmount > highWaterMark) return SLOW;
  const sent = member.send(payload.data) as PromiseLike<unknown> | undefined;
  if (typeof sent?.then === "function") sent.then(undefined, () => onLateFailure(member));
  return DELIVERED;
}
