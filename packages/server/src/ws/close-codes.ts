import WebSocket from "ws";
import type { RefusalReason } from "../refusals.js";

/** A close frame's code and reason (RFC 6455 section 7.4). */
export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

// 4000-4999 are private to an application (4000: disconnected by the server API); 3000 is the
// protocol's own, registered with IANA.

/** Sent to every connection at shutdown. */
export const GOING_AWAY: CloseFrame = { code: 1001, reason: "server shutting down" };

/**
 * Sent to every connection of an id the server API's `disconnect` names: the application asked,
 * so a client library stops reconnecting (4000, the first of the application's own codes).
 */
export const DISCONNECTED: CloseFrame = { code: 4000, reason: "disconnected" };

/** Sent when handling a connection's message threw: a bug costs that one connection. */
export const INTERNAL_ERROR: CloseFrame = { code: 1011, reason: "internal error" };

/** The close each refusal of an open connection sends, keyed by its `ws_channels_refused_total` reason. */
export const REFUSAL_CLOSES = {
  id_in_use: { code: 1008, reason: "id in use" },
  rate_limit: { code: 1008, reason: "rate limit" },
  too_many_connections: { code: 1008, reason: "too many connections" },
  too_many_pending: { code: 1008, reason: "too many pending" },
  token_expired: { code: 1008, reason: "token expired" },
  token_subject: { code: 1008, reason: "token subject changed" },
  invalid_payload: { code: 3000, reason: "invalid payload" },
  not_a_member: { code: 3000, reason: "cannot send to channel" },
} as const satisfies Partial<Record<RefusalReason, CloseFrame>>;

/** A refusal that closes the connection. */
export type ClosingRefusal = keyof typeof REFUSAL_CLOSES;

/** Told of every refusal, to count and log it; `detail` goes to the log only. */
export type Refused = (reason: RefusalReason, address: string, detail?: string) => void;

/**
 * Counts and logs the refusal through `refused` (`detail` for the log only), then closes `ws`
 * with the refusal's close code. A connection that is no longer open is left alone and not
 * counted: it was refused once already.
 */
export function closeRefused(ws: WebSocket, reason: ClosingRefusal, address: string, refused: Refused, detail?: string): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  refused(reason, address, detail);
  const { code, reason: text } = REFUSAL_CLOSES[reason];
  ws.close(code, text);
}
