import type { PresenceDiff } from "./frames.js";

/** A member's changes in the turn: the entry it left with (from before the turn), the one it joined with. */
interface Change<E> {
  leave?: E;
  join?: E;
}

/**
 * The joins and leaves of one channel in one event-loop turn, by member: a member that joins and
 * leaves again within the turn cancels out; one that leaves and joins again (a new entry) is a
 * leave of the old entry and a join of the new one.
 */
export class Gather<M, E> {
  readonly #changes = new Map<M, Change<E>>();

  get empty(): boolean {
    return this.#changes.size === 0;
  }

  join(member: M, entry: E): void {
    const change = this.#changes.get(member);
    if (change === undefined) this.#changes.set(member, { join: entry });
    else change.join = entry;
  }

  leave(member: M, entry: E): void {
    const change = this.#changes.get(member);
    if (change === undefined) this.#changes.set(member, { leave: entry });
    else if (change.join === undefined) change.leave = entry;
    else if (change.leave === undefined)
      this.#changes.delete(member); // joined in this turn: nothing happened
    else delete change.join; // back to the entry it had before the turn left
  }

  /** The turn's diff; empties the gather. */
  take(): PresenceDiff<E> {
    const diff: PresenceDiff<E> = { joins: [], leaves: [] };
    for (const { join, leave } of this.#changes.values()) {
      if (leave !== undefined) diff.leaves.push(leave);
      if (join !== undefined) diff.joins.push(join);
    }
    this.#changes.clear();
    return diff;
  }
}
