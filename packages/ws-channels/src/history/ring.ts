/**
 * The last `size` entries of one channel, oldest first, with the time each was appended. A fixed
 * circular buffer: an append past `size` overwrites the oldest, so memory is `size` slots at most.
 * The offsets of the kept entries are contiguous, `top - length + 1` to `top`, so none is stored.
 */
export class Ring<T> {
  /** The offset of the newest entry appended (0 before the first). */
  top = 0;
  /** When the newest entry was appended, or when the ring was made: what idle expiry counts from. */
  touched: number;
  readonly epoch: string;
  readonly size: number;
  readonly ttlMs: number;
  #data: (T | undefined)[] = [];
  #at: number[] = [];
  /** Where the oldest kept entry is in the buffer. */
  #start = 0;
  #length = 0;

  constructor(epoch: string, size: number, ttlMs: number, now: number) {
    this.epoch = epoch;
    this.size = size;
    this.ttlMs = ttlMs;
    this.touched = now;
  }

  /** Entries kept now. */
  get length(): number {
    return this.#length;
  }

  /** The offset of the oldest entry kept, or `top + 1` when none is. */
  get oldest(): number {
    return this.top - this.#length + 1;
  }

  /** Appends `data` and returns its offset. */
  append(data: T, now: number): number {
    const slot = (this.#start + this.#length) % this.size;
    this.#data[slot] = data;
    this.#at[slot] = now;
    if (this.#length < this.size) this.#length++;
    else this.#start = (this.#start + 1) % this.size;
    this.touched = now;
    return ++this.top;
  }

  /** Drops the entries appended `ttlMs` or longer before `now`, oldest first. */
  trim(now: number): void {
    while (this.#length > 0 && now - (this.#at[this.#start] as number) >= this.ttlMs) {
      this.#data[this.#start] = undefined; // so that a dropped payload can be collected
      this.#start = (this.#start + 1) % this.size;
      this.#length--;
    }
  }

  /** Calls `visit` with each entry after offset `after` (>= oldest - 1), in order. */
  forEachAfter(after: number, visit: (data: T, offset: number) => void): void {
    for (let offset = after + 1; offset <= this.top; offset++) {
      visit(this.#data[(this.#start + offset - this.oldest) % this.size] as T, offset);
    }
  }
}
