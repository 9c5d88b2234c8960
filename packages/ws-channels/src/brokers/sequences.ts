import type { ChannelId } from "../types.js";

/**
 * The most channels with no local member whose outgoing sequence a node remembers at once (a
 * channel with local members keeps its own in its record). Past it, the quarter of them used
 * least recently (broadcast to, or left by their last local member) are forgotten, and each
 * starts a new sequence (a new epoch) when it is next broadcast to: memory stays bounded however
 * many short-lived channels a node broadcasts to.
 */
export const MAX_SEQUENCES = 65_536;

/** The outgoing sequence of one channel at this node. */
export interface Sequence {
  readonly epoch: number;
  seq: number;
  /** When it was last used (broadcast to here, or kept again), on a clock of those uses. */
  used: number;
}

/**
 * A node's outgoing sequences, one per channel it broadcasts to, each with an epoch of its own so
 * that a receiver never compares numbers across two of them.
 */
export class Sequences {
  readonly #sequences = new Map<ChannelId, Sequence>();
  #epochs = 0;
  /** The clock of `used`: one tick per broadcast numbered here and per sequence kept again. */
  #uses = 0;

  /** The sequence of `channel`, started (in a new epoch) if it has none. */
  of(channel: ChannelId): Sequence {
    let sequence = this.#sequences.get(channel);
    if (sequence === undefined) {
      sequence = this.#start();
      this.#add(channel, sequence);
    }
    return sequence;
  }

  /**
   * Takes `channel`'s sequence out (one is started if it has none): a live channel's record numbers
   * its broadcasts itself, with nothing else to touch, until its last local member leaves (`keep`).
   */
  take(channel: ChannelId): Sequence {
    const sequence = this.#sequences.get(channel);
    if (sequence === undefined) return this.#start();
    this.#sequences.delete(channel);
    return sequence;
  }

  /** Keeps `channel`'s sequence again, at `seq` in `epoch`, as used now. */
  keep(channel: ChannelId, epoch: number, seq: number): void {
    this.#add(channel, { epoch, seq, used: ++this.#uses });
  }

  /** A new sequence, in the next epoch: from 1 to 2^32 - 1, since a record's epoch 0 means none yet. */
  #start(): Sequence {
    this.#epochs = (this.#epochs % 0xffff_ffff) + 1;
    return { epoch: this.#epochs, seq: 0, used: 0 };
  }

  /** Sets `channel`'s sequence, making room first when MAX_SEQUENCES are kept. */
  #add(channel: ChannelId, sequence: Sequence): void {
    if (this.#sequences.size >= MAX_SEQUENCES) this.#forgetOldest();
    this.#sequences.set(channel, sequence);
  }

  /** Numbers the next broadcast of `sequence` (see `seqAfter`). @returns its number. */
  next(sequence: Sequence): number {
    sequence.used = ++this.#uses;
    sequence.seq = seqAfter(sequence.seq);
    return sequence.seq;
  }

  /**
   * Forgets the quarter of the sequences used least recently: one sort per MAX_SEQUENCES / 4
   * new channels, where keeping the Map in order of use would move an entry on every broadcast.
   */
  #forgetOldest(): void {
    const used = Float64Array.from(this.#sequences.values(), (sequence) => sequence.used).sort();
    const oldest = used[used.length >> 2] as number;
    for (const [channel, sequence] of this.#sequences) if (sequence.used < oldest) this.#sequences.delete(channel);
  }
}

/** The number of the broadcast after `seq` in a sequence: from 1, modulo 2^32. */
export function seqAfter(seq: number): number {
  return (seq + 1) >>> 0;
}
