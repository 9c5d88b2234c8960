import type { PresenceChange, PresenceEntry } from "./types.js";

/** The diff frame's shape: whole entries joining, refs leaving. */
interface Diff {
  readonly joins: readonly PresenceEntry[];
  readonly leaves: readonly string[];
}

/**
 * One room's presence: entries by ref. A snapshot (a join's or rejoin's) is diffed against what
 * was known so that only real changes are told; diffs that arrive before a snapshot wait for it.
 */
export class PresenceList {
  readonly #entries = new Map<string, PresenceEntry>();
  /** Whether the current join's snapshot has come; until then diffs wait in `#early`. */
  #ready = false;
  #early: Diff[] = [];
  /** Whether the last snapshot said it may miss or keep entries (the server could not reach every node). */
  partial = false;

  /** A new join was sent: its diffs wait for its snapshot. */
  expectSnapshot(): void {
    this.#ready = false;
    this.#early = [];
  }

  /**
   * Takes a snapshot (`partial`: the server said it may be incomplete or stale), replacing the
   * list, then the diffs that came before it. @returns what changed since the last list known.
   */
  snapshot(entries: readonly PresenceEntry[], partial: boolean): PresenceChange {
    this.partial = partial;
    const fresh = new Map(entries.map((entry) => [entry.ref, entry]));
    const joins = entries.filter((entry) => !this.#entries.has(entry.ref));
    const leaves = [...this.#entries.values()].filter((entry) => !fresh.has(entry.ref));
    this.#entries.clear();
    for (const [ref, entry] of fresh) this.#entries.set(ref, entry);
    this.#ready = true;
    const early = this.#early;
    this.#early = [];
    return early.reduce((change, diff) => merge(change, this.#apply(diff)), { joins, leaves } as PresenceChange);
  }

  /** Applies one diff frame. @returns what really changed; undefined while waiting for the snapshot. */
  diff(diff: Diff): PresenceChange | undefined {
    if (!this.#ready) {
      this.#early.push(diff);
      return undefined;
    }
    return this.#apply(diff);
  }

  #apply({ joins, leaves }: Diff): PresenceChange {
    const left: PresenceEntry[] = [];
    for (const ref of leaves) {
      const entry = this.#entries.get(ref);
      if (entry !== undefined && this.#entries.delete(ref)) left.push(entry);
    }
    const joined = joins.filter((entry) => !this.#entries.has(entry.ref));
    for (const entry of joined) this.#entries.set(entry.ref, entry);
    return { joins: joined, leaves: left };
  }

  /** The members: id (`""` for entries without one) to ref to info, in a new Map each call. */
  members(): Map<string, Map<string, Readonly<Record<string, unknown>> | undefined>> {
    const byId = new Map<string, Map<string, Readonly<Record<string, unknown>> | undefined>>();
    for (const { ref, id, info } of this.#entries.values()) {
      const key = id ?? "";
      const refs = byId.get(key) ?? new Map();
      byId.set(key, refs.set(ref, info));
    }
    return byId;
  }
}

/** Two changes one after the other as one (an entry that joins then leaves cancels out). */
function merge(first: PresenceChange, second: PresenceChange): PresenceChange {
  const gone = new Set(second.leaves.map((entry) => entry.ref));
  const cancelled = new Set(first.joins.filter((entry) => gone.has(entry.ref)).map((entry) => entry.ref));
  return {
    joins: [...first.joins.filter((entry) => !cancelled.has(entry.ref)), ...second.joins],
    leaves: [...first.leaves, ...second.leaves.filter((entry) => !cancelled.has(entry.ref))],
  };
}
