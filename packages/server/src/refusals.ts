/**
 * Every reason the server refuses a client something: the `reason` label of
 * `ws_channels_refused_total`, and the `reason` field of its warn log line.
 */
export const REFUSAL_REASONS = [
  "token",
  "token_expired",
  "token_subject",
  "origin",
  "id_in_use",
  "too_many_connections",
  "rate_limit",
  "invalid_payload",
  "invalid_frame",
  "message_too_big",
  "not_a_member",
  "forbidden",
  "too_many_channels",
  "too_many_pending",
  "too_many_targets",
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];
