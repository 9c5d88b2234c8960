import type { Identity } from "../auth.js";

/** The longest delay `setTimeout` takes, in ms (about 24.8 days); an expiry further off waits in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What a connection's token grants, replaced in place by a refresh: the channels it may join, and
 * when it expires. Once the expiry passes it calls `expired`, which should check `expired` again
 * when it gets its turn: a refresh queued before it may have moved the expiry.
 */
export class Grant {
  #allowed: readonly string[] | undefined;
  /** In ms since the epoch; undefined: never. */
  #expiresAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #onExpiry: () => void;

  /** @param identity what `authenticate` verified; undefined without authentication: any channel, no expiry. */
  constructor(identity: Identity | undefined, onExpiry: () => void) {
    this.#onExpiry = onExpiry;
    if (identity !== undefined) this.replace(identity);
  }

  /** The channels it may join (entries ending in `*` are prefixes); undefined: any. */
  get allowed(): readonly string[] | undefined {
    return this.#allowed;
  }

  /** When it expires, in ms since the epoch; undefined: never. */
  get expiresAt(): number | undefined {
    return this.#expiresAt;
  }

  /** Whether its expiry has passed. */
  get expired(): boolean {
    return this.#expiresAt !== undefined && this.#expiresAt <= Date.now();
  }

  /** Takes the channels and expiry of `identity` (a refreshed token), and moves the expiry timer to it. */
  replace(identity: Identity): void {
    this.#allowed = identity.channels;
    this.#expiresAt = identity.expiresAt;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#expiresAt !== undefined && !this.#stopped) this.#check();
  }

  /** Stops the expiry timer for good (the connection closed). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  readonly #check = (): void => {
    const left = (this.#expiresAt ?? Infinity) - Date.now();
    if (left <= 0) return this.#onExpiry();
    this.#timer = setTimeout(this.#check, Math.min(left, MAX_TIMER_MS));
  };
}
