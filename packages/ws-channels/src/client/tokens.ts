import type { TokenSource } from "./types.js";

type Timer = ReturnType<typeof setTimeout>;

/** setTimeout's longest delay (2^31 - 1 ms); a longer one would fire at once. */
const MAX_TIMER = 2_147_483_647;

/**
 * The client's token: read before every attempt and, from a token function, sent as
 * `{"refresh": TOKEN}` before the current one expires.
 */
export class Tokens {
  readonly #source: TokenSource | undefined;
  readonly #before: number;
  #timer: Timer | undefined;

  /** @param before ms before expiry to refresh (at most half the time left). */
  constructor(source: TokenSource | undefined, before: number) {
    this.#source = source;
    this.#before = before;
  }

  /** The token for the next attempt (the function called again each time); undefined: none. */
  async read(): Promise<string | undefined> {
    if (typeof this.#source !== "function") return this.#source;
    const token = await this.#source();
    if (typeof token !== "string") throw new TypeError(`the token function returned ${typeof token}, not a string`);
    return token;
  }

  /**
   * With a token function, calls `refresh` with a new token a little before `expiresAt` (seconds
   * since the epoch, as a JWT's `exp` and the `refreshed` reply carry it). A string token cannot
   * be renewed: nothing is scheduled.
   */
  schedule(expiresAt: number | null | undefined, refresh: (token: string) => void): void {
    this.cancel();
    if (typeof this.#source !== "function" || typeof expiresAt !== "number") return;
    const left = expiresAt * 1000 - Date.now();
    const wait = Math.min(MAX_TIMER, Math.max(0, left - Math.min(this.#before, left / 2)));
    this.#timer = setTimeout(() => {
      // a failed read leaves the old token until it expires
      this.read().then(
        (token) => token !== undefined && refresh(token),
        () => undefined,
      );
    }, wait);
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * The `exp` claim of a JWT (RFC 7519 section 4.1.4), in seconds since the epoch, read without
 * verifying anything (the server verifies); undefined when the token is not a JWT or has none.
 */
export function expiryOf(token: string | undefined): number | undefined {
  const payload = token?.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="))) as { exp?: unknown };
    return typeof claims.exp === "number" ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}
