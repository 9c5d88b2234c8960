import type { Channels, HistoryPosition } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";
import { type HistorySettings, type Joined, type Kept, SayHistory } from "../history.js";

/**
 * Where a service's kept says live, as its adapter provides it (`Adapter.history`): every say of
 * a channel gets the channel's next offset there and reaches every member on every node in offset
 * order, and a join takes its position (or what a returning client missed) there.
 */
export interface HistoryStore {
  /**
   * Keeps a say and delivers it, with its offset and epoch, to the members of `channel` on every node.
   * @param entry the say's JSON text, `{"say":...}` or `{"say":...,"from":...}`.
   */
  say(channel: string, entry: string): void;
  /**
   * Keeps a say and delivers it as `say` does (the server API's publish).
   * @returns its position; undefined if it could not be kept (the store is unreachable or closed).
   */
  publish(channel: string, entry: string): Promise<HistoryPosition | undefined>;
  /**
   * Reads what `channel` keeps after `since` (from the oldest kept when `since` is of another
   * epoch or older than what is kept), oldest first, at most `limit` says.
   * @throws rejects if the store cannot be reached.
   */
  read(channel: string, since: HistoryPosition | undefined, limit: number): Promise<Kept>;
  /**
   * Takes the channel's position, or with `recover` what a returning client missed, and calls
   * `commit` with the reply in the same synchronous step as the snapshot: `commit` joins the
   * member and queues the reply, so that every say after that position reaches the member after
   * the reply and none before it is missing from it.
   * @returns what `commit` returned; resolves without calling it if the store is closed meanwhile.
   */
  join(channel: string, recover: HistoryPosition | undefined, commit: (reply: Joined) => Promise<void>): Promise<void>;
  /** Forgets what it keeps here and stops its timers. */
  close(): void;
}

/** A process alone: the rings in this process, appended to and read synchronously. */
export class LocalHistory implements HistoryStore {
  readonly #says: SayHistory;
  readonly #channels: Channels<ClientMeta>;

  constructor(settings: HistorySettings, channels: Channels<ClientMeta>) {
    this.#says = new SayHistory(settings);
    this.#channels = channels;
  }

  say(channel: string, entry: string): void {
    void this.publish(channel, entry);
  }

  publish(channel: string, entry: string): Promise<HistoryPosition | undefined> {
    const { text, position } = this.#says.numbered(channel, entry);
    this.#channels.broadcast(channel, text).catch(
      () => undefined, // rejected only once channels are closed, during shutdown
    );
    return Promise.resolve(position);
  }

  read(channel: string, since: HistoryPosition | undefined, limit: number): Promise<Kept> {
    return Promise.resolve(this.#says.read(channel, since, limit));
  }

  join(channel: string, recover: HistoryPosition | undefined, commit: (reply: Joined) => Promise<void>): Promise<void> {
    return commit(this.#says.joined(channel, recover));
  }

  close(): void {
    this.#says.close();
  }
}
