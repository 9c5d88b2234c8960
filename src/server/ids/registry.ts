/**
 * Where the connection ids of a server spanning several nodes are claimed and found. A node keeps
 * its own connections' ids itself and asks the registry about the others: a claim, so that an
 * unverified `?id=` is in use on one node at most; and where an id lives, so that a targeted
 * message reaches every node holding it.
 *
 * A node is known by its *route*: a numeric channel it listens on for targeted messages, which no
 * client can join (client channels are strings) and which is never the TCP channel (0).
 */
export interface IdRegistry {
  /** This node's route. */
  readonly route: number;
  /**
   * Records that a connection of this node holds `id`.
   * @param exclusive true for an unverified `?id=` claim, which no other node may hold at the
   *   same time; false for an id verified by `authenticate`, which any number of nodes may hold.
   * @returns false if the claim is exclusive and another node holds the id; else true. While the
   *   registry cannot be reached the claim is granted, and made for real once it can.
   */
  claim(id: string, exclusive: boolean): Promise<boolean>;
  /** This node no longer holds `id`; what other nodes hold is left alone. */
  release(id: string): void;
  /**
   * Finds which other nodes hold `ids`.
   * @returns id -> the routes of the other nodes holding it, for the ids held elsewhere; ids held
   *   nowhere else (or all of them while the registry cannot be reached) are absent.
   */
  locate(ids: readonly string[]): Promise<Map<string, number[]>>;
  /**
   * Called with each exclusive id this node held and lost to another node (possible only after
   * the registry lost its state, a Redis restart say, while two nodes each let a connection in).
   */
  onLost(listener: (id: string) => void): void;
  /** Releases every claim of this node and closes what the registry opened. */
  close(): Promise<void>;
}

/** One node alone: nobody else can hold an id, so every claim is granted and nothing is elsewhere. */
export class SingleNode implements IdRegistry {
  readonly route = newRoute();

  claim(): Promise<boolean> {
    return Promise.resolve(true);
  }

  release(): void {}

  locate(): Promise<Map<string, number[]>> {
    return Promise.resolve(new Map());
  }

  onLost(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A route for a new node: a negative integer, so that it can be neither a client channel nor the TCP channel (0). */
export function newRoute(): number {
  return -1 - Math.floor(Math.random() * 2 ** 52);
}
