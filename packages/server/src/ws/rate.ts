/**
 * A token bucket for one connection: `rate` tokens, refilled continuously at `rate` per second;
 * a message takes one. The burst is the rate itself.
 */
export class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #refilled = performance.now();

  /** @param rate messages per second, and the largest burst (integer >= 1). */
  constructor(rate: number) {
    this.#rate = rate;
    this.#tokens = rate;
  }

  /** Takes `tokens` tokens (default 1). @returns false, taking nothing, when the bucket holds fewer. */
  take(tokens = 1): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#refilled) * this.#rate) / 1000);
    this.#refilled = now;
    if (this.#tokens < tokens) return false;
    this.#tokens -= tokens;
    return true;
  }
}
