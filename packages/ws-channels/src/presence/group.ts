import type { PresenceCount } from "./frames.js";
import { Gather } from "./gather.js";

/**
 * One listened channel's presence state: its two listener channels (ids in the listeners'
 * `Channels`), its callback watchers, the turn's changes, the diff frames still being written,
 * and the count throttle.
 */
export class Group<M, E, D> {
  readonly gather = new Gather<M, E>();
  readonly watchers = new Set<(diff: D) => void>();
  /** Listeners still being added (waiting for diffs in flight to be written). */
  adding = 0;
  /** Over `max` entries: full-list listeners get counts until it falls back. */
  overflow = false;
  lastCount: PresenceCount | undefined;
  lastCountAt = Number.NEGATIVE_INFINITY;
  timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  /**
   * @param full the listeners' channel of full-list listeners; `full + 1` is the count listeners'.
   * @param stop stops observing the channel.
   */
  constructor(
    readonly full: number,
    readonly stop: () => void,
  ) {}

  get count(): number {
    return this.full + 1;
  }

  /** Gives `diff` to the watchers. @returns false if the diff is empty (nobody is told). */
  tell(diff: D & { joins: readonly unknown[]; leaves: readonly unknown[] }): boolean {
    if (diff.joins.length === 0 && diff.leaves.length === 0) return false;
    for (const watcher of this.watchers) {
      try {
        watcher(diff);
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
    return true;
  }

  /** Calls `send` now, or once `interval` ms have passed since the last counts (one call pending at most). */
  countSoon(interval: number, send: () => void): void {
    if (this.timer !== undefined) return;
    const wait = this.lastCountAt + interval - Date.now();
    if (wait <= 0) return send();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      send();
    }, wait).unref();
  }

  /** Tracks a frame being written to the group's listeners until `written` settles. */
  track(written: Promise<unknown>): void {
    this.#inFlight++;
    const done = (): void => {
      if (--this.#inFlight > 0) return;
      const waiting = this.#idle;
      this.#idle = [];
      for (const resolve of waiting) resolve();
    };
    written.then(done, done);
  }

  /** Resolves once no frame is being written to the group's listeners (at once if none is). */
  async idle(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  dispose(): void {
    this.stop();
    clearTimeout(this.timer);
  }
}

/** Whether two counts are equal (undefined equals nothing). */
export function sameCount(a: PresenceCount | undefined, b: PresenceCount): boolean {
  return a !== undefined && a.connections === b.connections && a.users === b.users;
}
