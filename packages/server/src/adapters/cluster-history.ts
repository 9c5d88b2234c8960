import type { Channels, HistoryPosition } from "ws-channels";
import { fromPrimary } from "ws-channels/cluster";
import type { ClientMeta } from "../client-meta.js";
import type { Joined, Kept } from "../history.js";
import type { HistoryStore } from "./history-store.js";
import { PrimaryRequests } from "./primary-requests.js";

/** What a worker's history says to the primary (`serveClusterHistory`), on the one IPC convention of cluster-protocol.ts. */
export type HistoryToPrimary =
  | { wsChannels: "history-say"; channel: string; entry: string; request?: number }
  | { wsChannels: "history-read"; channel: string; since: HistoryPosition | undefined; limit: number; request: number }
  | { wsChannels: "history-join"; channel: string; recover: HistoryPosition | undefined; request: number }
  | { wsChannels: "history-leave"; channel: string };

/** What the primary answers, and the says it delivers to every worker with members in their channel. */
export type HistoryToWorker =
  | { wsChannels: "history-joined"; request: number; reply: Joined }
  | { wsChannels: "history-said"; request: number; position: HistoryPosition }
  | { wsChannels: "history-kept"; request: number; kept: Kept }
  | { wsChannels: "history-msg"; channel: string; text: string; epoch: string; offset: number }
  | { wsChannels: "history-lost"; channels: string[] };

/**
 * A worker's history when the cluster primary keeps the rings (`serveClusterHistory`): a say goes
 * to the primary, which numbers it and sends its delivery to every worker with members in the
 * channel, this one too, in offset order; a join asks the primary, which registers this worker
 * for the channel and takes the snapshot in one step, so the deliveries after the snapshot follow
 * the answer on the same IPC channel. A worker tells the primary it no longer needs a channel's
 * says when one arrives for a channel with no member here and no join under way.
 *
 * A delivery whose offset is not the next one in the channel's epoch, or the primary's word that
 * deliveries were dropped (this worker stopped reading its IPC channel past the primary's bound),
 * means this worker lost says: its members get `{"resync": CH}` and join again with `recover`.
 */
export class ClusterHistory implements HistoryStore {
  readonly #channels: Channels<ClientMeta>;
  readonly #joins = new PrimaryRequests<Joined>();
  /** The server API's requests (publish, read): each resolves with the answer, or undefined if the primary is gone. */
  readonly #asked = new PrimaryRequests<HistoryPosition | Kept>();
  /** Joins sent to the primary and not yet answered, by channel. */
  readonly #joining = new Map<string, number>();
  /** The position of the last say delivered here, by channel. */
  readonly #last = new Map<string, HistoryPosition>();
  readonly #unlisten: () => void;

  constructor(channels: Channels<ClientMeta>) {
    this.#channels = channels;
    this.#unlisten = fromPrimary<HistoryToWorker>({
      "history-joined": ({ request, reply }) => this.#joins.answer(request, reply),
      "history-msg": (message) => this.#delivered(message),
      "history-said": ({ request, position }) => this.#asked.answer(request, position),
      "history-kept": ({ request, kept }) => this.#asked.answer(request, kept),
      "history-lost": ({ channels }) => {
        for (const channel of channels) this.#resync(channel);
      },
    });
  }

  say(channel: string, entry: string): void {
    post({ wsChannels: "history-say", channel, entry });
  }

  publish(channel: string, entry: string): Promise<HistoryPosition | undefined> {
    return this.#ask((request) => ({ wsChannels: "history-say", channel, entry, request })) as Promise<HistoryPosition | undefined>;
  }

  async read(channel: string, since: HistoryPosition | undefined, limit: number): Promise<Kept> {
    const kept = await this.#ask((request) => ({ wsChannels: "history-read", channel, since, limit, request }));
    if (kept === undefined) throw new Error("the cluster primary is gone");
    return kept as Kept;
  }

  join(channel: string, recover: HistoryPosition | undefined, commit: (reply: Joined) => Promise<void>): Promise<void> {
    this.#joining.set(channel, (this.#joining.get(channel) ?? 0) + 1);
    return new Promise<void>((resolve) => {
      // Called inside the IPC handler: no delivery can be handled between the answer and the commit.
      const request = this.#joins.open((reply) => {
        const left = (this.#joining.get(channel) ?? 1) - 1;
        if (left === 0) this.#joining.delete(channel);
        else this.#joining.set(channel, left);
        if (reply === undefined) return resolve();
        this.#last.set(channel, { epoch: reply.epoch, offset: reply.offset });
        resolve(commit(reply));
      });
      if (!post({ wsChannels: "history-join", channel, recover, request })) this.#joins.answer(request, undefined);
    });
  }

  close(): void {
    this.#unlisten();
    this.#joins.close();
    this.#asked.close();
    this.#last.clear();
  }

  /** Sends a request to the primary. @returns its answer; undefined if the primary is gone (never answered otherwise: IPC loses nothing). */
  #ask(message: (request: number) => HistoryToPrimary): Promise<HistoryPosition | Kept | undefined> {
    return new Promise((resolve) => {
      const request = this.#asked.open(resolve);
      if (!post(message(request))) this.#asked.answer(request, undefined);
    });
  }

  #delivered({ channel, text, epoch, offset }: Extract<HistoryToWorker, { wsChannels: "history-msg" }>): void {
    if (this.#channels.count(channel) === 0 && !this.#joining.has(channel)) {
      this.#last.delete(channel);
      post({ wsChannels: "history-leave", channel });
      return;
    }
    const last = this.#last.get(channel);
    this.#last.set(channel, { epoch, offset });
    // the primary registered this worker before its first delivery here: a hole is a loss
    const lost = last !== undefined && last.epoch === epoch && offset !== last.offset + 1;
    if (lost) this.#resync(channel);
    // every worker gets it from the primary: the broker must not carry it too; rejected only during shutdown
    this.#channels.broadcast(channel, text, { local: true }).catch(() => undefined);
  }

  /** Tells the members of `channel` here that says may be missing: they join again with `recover`. */
  #resync(channel: string): void {
    this.#channels.broadcast(channel, `{"resync":${JSON.stringify(channel)}}`, { local: true }).catch(() => undefined);
  }
}

/** Sends `message` to the primary. @returns false if it is gone. */
function post(message: HistoryToPrimary): boolean {
  if (!process.connected) return false;
  process.send?.(message, undefined, undefined, () => undefined); // a closing channel is the worker's `disconnect`
  return true;
}
