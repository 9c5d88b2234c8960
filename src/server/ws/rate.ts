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

  /** Takes a token. @returns false, taking nothing, when the bucket is empty. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#refilled) * this.#rate) / 1000);
    this.#refilled = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
