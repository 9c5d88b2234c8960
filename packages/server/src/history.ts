import { History, type HistoryPosition } from "ws-channels";

/** History settings, checked: every channel keeps its last `size` says for `ttlMs`. */
export interface HistorySettings {
  readonly size: number;
  readonly ttlMs: number;
  /** The most says one recovery may return; more missed: `recovered: false`. */
  readonly recoverMax: number;
}

/** A missed say as a recovery lists it. */
export interface Missed {
  readonly say: unknown;
  readonly from?: string;
  readonly offset: number;
}

/** What a channel keeps, as the server API's `history` answers it: the says read and the channel's position. */
export interface Kept {
  readonly publications: Missed[];
  readonly epoch: string;
  readonly offset: number;
}

/** The reply to a join with history on (see the protocol table in docs/protocol.md). */
export type Joined =
  | { joined: string; epoch: string; offset: number }
  | { joined: string; recovered: true; epoch: string; offset: number; missed: Missed[] }
  | { joined: string; recovered: false; epoch: string; offset: number };

/**
 * The says of a service, kept where its adapter keeps them (issue 18: in a process alone, or in
 * the cluster primary): every say gets its channel's next offset and is
 * delivered with it; a join answers with the channel's position, or with what a returning client
 * missed. Each say is kept as its JSON text, `{"say":...,"from":...}`, encoded once for the
 * delivery and the history both.
 */
export class SayHistory {
  readonly #history: History<string>;
  readonly #recoverMax: number;

  constructor(settings: HistorySettings) {
    const { size, ttlMs } = settings;
    this.#history = new History<string>({ history: () => ({ size, ttlMs }) });
    this.#recoverMax = settings.recoverMax;
  }

  /**
   * Keeps a say and returns its delivery, `{"to", "say", "from"?, "offset", "epoch"}`, as text.
   * @param entry the say's JSON text, `{"say":...}` or `{"say":...,"from":...}`.
   */
  deliver(channel: string, entry: string): string {
    return this.numbered(channel, entry).text;
  }

  /** As `deliver`, with the say's position too. */
  numbered(channel: string, entry: string): { text: string; position: HistoryPosition } {
    const position = this.#history.append(channel, entry) as HistoryPosition; // every channel keeps history
    const { epoch, offset } = position;
    return {
      text: `{"to":${JSON.stringify(channel)},${entry.slice(1, -1)},"offset":${offset},"epoch":${JSON.stringify(epoch)}}`,
      position,
    };
  }

  /**
   * What `channel` keeps after `since` (from the oldest kept when `since` is of another epoch or
   * older than what is kept), oldest first, at most `limit`.
   */
  read(channel: string, since: HistoryPosition | undefined, limit: number): Kept {
    const { epoch } = this.position(channel);
    const after = since !== undefined && since.epoch === epoch ? since.offset : 0;
    const got = this.#history.read(channel, after, limit) as HistoryPosition & { entries: { offset: number; data: string }[] };
    const publications = got.entries.map(({ offset, data }) => ({ ...(JSON.parse(data) as { say: unknown; from?: string }), offset }));
    return { publications, epoch: got.epoch, offset: got.offset };
  }

  /** Where `channel` stands now: its epoch and newest offset. */
  position(channel: string): HistoryPosition {
    return this.#history.position(channel) as HistoryPosition; // every channel keeps history
  }

  /**
   * The reply to a join made in the same synchronous step: the channel's position, or with
   * `recover`, every say after it (exactly those) or `recovered: false`.
   */
  joined(channel: string, recover: HistoryPosition | undefined): Joined {
    if (recover === undefined) {
      const { epoch, offset } = this.#history.position(channel) as HistoryPosition;
      return { joined: channel, epoch, offset };
    }
    const got = this.#history.recover(channel, recover, this.#recoverMax);
    if (got === undefined || !got.recovered) {
      const { epoch, offset } = got ?? (this.#history.position(channel) as HistoryPosition);
      return { joined: channel, recovered: false, epoch, offset };
    }
    const missed = got.missed.map(({ offset, data }) => ({ ...(JSON.parse(data) as { say: unknown; from?: string }), offset }));
    return { joined: channel, recovered: true, epoch: got.epoch, offset: got.offset, missed };
  }

  /** Forgets every say and stops the expiry timer. */
  close(): void {
    this.#history.close();
  }
}
