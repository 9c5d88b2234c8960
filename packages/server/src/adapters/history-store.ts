import type { Channels, HistoryPosition } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";
import { type HistorySettings, type Joined, SayHistory } from "../history.js";

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
    this.#channels.broadcast(channel, this.#says.deliver(channel, entry)).catch(
      () => undefined, // rejected only once channels are closed, during shutdown
    );
  }

  join(channel: string, recover: HistoryPosition | undefined, commit: (reply: Joined) => Promise<void>): Promise<void> {
    return commit(this.#says.joined(channel, recover));
  }

  close(): void {
    this.#says.close();
  }
}
