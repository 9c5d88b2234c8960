/**
 * Where the connection ids (`?id=`) of a server spanning several nodes are claimed and found. A
 * node keeps its own connections' ids itself and asks the registry only about the others: a
 * claim, so that an id is in use on one node at most; and where an id lives, so that a targeted
 * message reaches the node holding it.
 *
 * A node is known by its *route*: a numeric channel it listens on for targeted messages, which no
 * client can join (client channels are strings).
 */
export interface IdRegistry {
  /** This node's route. */
  readonly route: number;
  /**
   * Claims `id` for a connection of this node.
   * @returns true if no other node holds it (it is now this node's), false if one does. While
   *   the registry cannot be reached the claim is granted and made for real once it can.
   */
  claim(id: string): Promise<boolean>;
  /** Gives back this node's claim on `id`; a claim another node has made since is left alone. */
  release(id: string): void;
  /**
   * Finds which other nodes hold `ids`.
   * @returns id -> the holding node's route, for the ids held elsewhere; ids held nowhere (or
   *   only on this node, or while the registry cannot be reached) are absent.
   */
  locate(ids: readonly string[]): Promise<Map<string, number>>;
  /**
   * Called with each id this node held and lost to another node (possible only after the
   * registry lost its state, a Redis restart say, while two nodes each had a connection with it).
   */
  onLost(listener: (id: string) => void): void;
  /** Releases every claim of this node and closes what the registry opened. */
  close(): Promise<void>;
}

/** One node alone: nobody else can hold an id, so every claim is granted and nothing is elsewhere. */
export class LocalIds implements IdRegistry {
  readonly route = -1;

  claim(): Promise<boolean> {
    return Promise.resolve(true);
  }

  release(): void {}

  locate(): Promise<Map<string, number>> {
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
