import { Channels, type Member, type Presence, type PresenceMode, type PresenceSnapshot } from "ws-channels";
import { fromPrimary } from "ws-channels/cluster";
import type { ClientMeta } from "../client-meta.js";
import { MembershipKeys, ownEntries, type PresenceParts, type PresenceStore, type StoreEntries } from "./presence.js";
import { PrimaryRequests } from "./primary-requests.js";

/** One membership in one channel as it crosses IPC: its key (unique in the channel) and meta; no meta is a leave. */
export type PresenceOp = [channel: string, key: string, meta?: ClientMeta];

/** What a worker's presence says to the primary (`serveClusterPresence`), on the one IPC convention of cluster-protocol.ts. */
export type PresenceToPrimary =
  | { wsChannels: "presenceChanges"; ops: PresenceOp[] }
  | { wsChannels: "presenceListen"; channel: string; request: number }
  | { wsChannels: "presenceUnlisten"; channel: string }
  | { wsChannels: "presenceRead"; channel: string; request: number };

/** What the primary sends: each turn's diff of a listened channel, and the answers. */
export type PresenceToWorker =
  | { wsChannels: "presenceDiff"; channel: string; joins: [string, ClientMeta][]; leaves: string[] }
  | { wsChannels: "presenceListened"; request: number; snapshot?: [string, ClientMeta][] }
  | { wsChannels: "presenceEntries"; request: number; metas: ClientMeta[] };

type Answer = Extract<PresenceToWorker, { request: number }>;

/**
 * A worker's presence, held by the primary (`serveClusterPresence`): the worker tells it every
 * join and leave of its `Channels`, one message per turn; the primary gathers every worker's
 * changes of a channel per turn into one diff and sends it to the workers that listen to the
 * channel. There a mirror `Channels` of the channel's members on every worker, under the
 * server's own `Presence`, builds the frames once and fans them out to the local listeners.
 * A listen first has the primary flush the channel's diff so far (this connection's join among it)
 * and, for a worker not yet listening, send the snapshot the mirror starts from: in IPC order,
 * no diff falls between the snapshot and the ones after it.
 */
export class ClusterPresence<E> implements PresenceStore<E> {
  readonly #parts: PresenceParts<E>;
  readonly #mirror = new Channels<ClientMeta>();
  readonly #presence: Presence<ClientMeta, Member, E>;
  /** Listened channels: key -> the mirror's stand-in member; absent until the snapshot is in. */
  readonly #listened = new Map<string, Map<string, Member> | undefined>();
  /** Listens waiting for the primary's answer, per channel. */
  readonly #pending = new Map<string, number>();
  readonly #requests = new PrimaryRequests<Answer>();
  readonly #keys = new MembershipKeys();
  readonly #stop: (() => void)[] = [];
  #ops: PresenceOp[] = [];
  #immediate: NodeJS.Immediate | undefined;

  constructor(parts: PresenceParts<E>) {
    this.#parts = parts;
    this.#presence = parts.local(this.#mirror);
    const answered = (answer: Answer): void => this.#requests.answer(answer.request, answer);
    this.#stop.push(
      fromPrimary<PresenceToWorker>({ presenceDiff: (diff) => this.#apply(diff), presenceListened: answered, presenceEntries: answered }),
      parts.channels.observe((channel, member, meta, cause) => {
        const key = this.#keys.of(member, meta);
        this.#ops.push(cause === "join" ? [String(channel), key, meta] : [String(channel), key]);
        this.#immediate ??= setImmediate(this.#flush);
        if (cause !== "join") this.#drop(String(channel));
      }),
    );
  }

  async listen(
    channel: string,
    member: Member,
    mode: PresenceMode,
    reply: (snapshot: PresenceSnapshot<E>) => string | Uint8Array,
  ): Promise<PresenceSnapshot<E> | undefined> {
    this.#flush(); // this connection's join goes before the listen
    const first = !this.#listened.has(channel);
    if (first) this.#listened.set(channel, undefined);
    this.#pending.set(channel, (this.#pending.get(channel) ?? 0) + 1);
    // filled as the answer is handled, not after an await: IPC messages that came in one read are
    // handled before any promise continuation, and the diffs after the snapshot would find no mirror
    await this.#ask(
      (request) => ({ wsChannels: "presenceListen", channel, request }),
      (answer) => {
        if (answer?.wsChannels === "presenceListened" && answer.snapshot !== undefined && first) this.#fill(channel, answer.snapshot);
        if (answer === undefined && this.#listened.get(channel) === undefined) this.#fill(channel, []); // the primary is gone
      },
    );
    this.#pending.set(channel, (this.#pending.get(channel) ?? 1) - 1);
    try {
      return await this.#presence.listen(channel, member, mode, reply);
    } finally {
      this.#drop(channel);
    }
  }

  unlisten(channel: string, member: Member): boolean {
    return this.#presence.unlisten(channel, member);
  }

  async entries(channel: string): Promise<StoreEntries<E>> {
    const answer = await this.#ask((request) => ({ wsChannels: "presenceRead", channel, request }));
    if (answer?.wsChannels === "presenceEntries") return { entries: answer.metas.map((meta) => this.#parts.entry(meta)) };
    // the primary is gone (the worker is stopping): this worker's own
    return { entries: ownEntries(this.#parts, channel), partial: true };
  }

  async close(): Promise<void> {
    for (const stop of this.#stop.splice(0)) stop();
    clearImmediate(this.#immediate);
    this.#requests.close();
    await this.#presence.close();
    await this.#mirror.close();
  }

  /** Sends this turn's joins and leaves to the primary. */
  readonly #flush = (): void => {
    this.#immediate = undefined;
    if (this.#ops.length === 0) return;
    const ops = this.#ops;
    this.#ops = [];
    post({ wsChannels: "presenceChanges", ops });
  };

  /** Stops listening to `channel` at the primary once this worker has no member in it and no listen is on its way. */
  #drop(channel: string): void {
    const stood = this.#listened.get(channel);
    if (!this.#listened.has(channel) || (this.#pending.get(channel) ?? 0) > 0 || this.#parts.channels.count(channel) > 0) return;
    this.#pending.delete(channel);
    this.#listened.delete(channel);
    for (const stand of stood?.values() ?? []) this.#mirror.leave(channel, stand);
    post({ wsChannels: "presenceUnlisten", channel });
  }

  /** Starts the mirror of `channel` from the primary's snapshot. */
  #fill(channel: string, snapshot: [string, ClientMeta][]): void {
    const stands = new Map<string, Member>();
    this.#listened.set(channel, stands);
    for (const [key, meta] of snapshot) this.#join(channel, stands, key, meta);
  }

  /** Applies one of the primary's diffs to the mirror: its `Presence` gathers them and fans the frames out. */
  #apply({ channel, joins, leaves }: Extract<PresenceToWorker, { wsChannels: "presenceDiff" }>): void {
    const stands = this.#listened.get(channel);
    if (stands === undefined) return; // not listened, or the snapshot on its way holds it
    for (const key of leaves) {
      const stand = stands.get(key);
      if (stand === undefined) continue;
      stands.delete(key);
      this.#mirror.leave(channel, stand);
    }
    for (const [key, meta] of joins) this.#join(channel, stands, key, meta);
  }

  #join(channel: string, stands: Map<string, Member>, key: string, meta: ClientMeta): void {
    const stand = { send: () => undefined }; // a stand-in: the mirror's members are never written to
    stands.set(key, stand);
    this.#mirror.join(channel, stand, meta);
  }

  /** Asks the primary; `onAnswer` runs as the answer (undefined: none can come) is handled, before the promise resolves. */
  #ask(message: (request: number) => PresenceToPrimary, onAnswer?: (answer: Answer | undefined) => void): Promise<Answer | undefined> {
    return new Promise((resolve) => {
      const request = this.#requests.open((answer) => {
        onAnswer?.(answer);
        resolve(answer);
      });
      post(message(request), () => this.#requests.answer(request, undefined));
    });
  }
}

/** Sends `message` to the primary; `failed` is called if it could not leave (the primary is gone). */
function post(message: PresenceToPrimary, failed: () => void = () => undefined): void {
  if (!process.connected) return failed();
  process.send?.(message, undefined, undefined, (error: Error | null) => {
    if (error !== null) failed();
  });
}
