/** The first retry waits at most this long, in ms. */
export const BASE_DELAY = 500;
/** No retry waits longer, in ms. */
export const MAX_DELAY = 10_000;

/**
 * The wait before retry number `attempt` (1, 2, ...), in ms: exponential backoff with full
 * jitter, a uniform draw in [0, min(MAX_DELAY, BASE_DELAY * 2^(attempt - 1))), so that clients
 * dropped together do not come back together.
 * @param random a draw in [0, 1), `Math.random` by default.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Whether a close the server sent means trying again cannot help: 1008 `too many connections`
 * (the server's limit for this address or node), 3000 (the server read a message it does not
 * accept: a client bug) and 4000 (the application disconnected this client through the server
 * API). Every other close, an expired token or an id in use included, is retried.
 */
export function isTerminal(code: number, reason: string): boolean {
  return code === 3000 || code === 4000 || (code === 1008 && reason === "too many connections");
}

/** Whether a close asks for a new token at once (the old one expired while connected). */
export function isTokenExpiry(code: number, reason: string): boolean {
  return code === 1008 && reason === "token expired";
}
