import { Emitter } from "./emitter.js";
import { PresenceList } from "./presence-list.js";
import type { JoinOptions, PresenceEntry, RoomEvents, RoomMessage } from "./types.js";

/** What a room needs of its client. */
export interface RoomHost {
  /** Sends a frame now. @returns false when no connection is open. */
  sendNow(frame: object): boolean;
  /** Sends a say now or once connected, within the client's offline bounds. */
  sendQueued(frame: object): Promise<void>;
  /** A new `req`. */
  nextReq(): number;
  /** The room left or was refused: forget it. */
  forget(room: Room): void;
}

/** Where the client stands in a channel with history: the offset of the last say seen, in its epoch. */
interface Position {
  offset: number;
  epoch: string;
}

/**
 * A joined channel (`client.join`): rejoined on every new connection, its says kept in order by
 * their offsets, its presence list kept current.
 */
export class Room extends Emitter<RoomEvents> {
  readonly channel: string;
  readonly #host: RoomHost;
  readonly #presence: PresenceList | undefined;
  readonly #recover: boolean;
  #position: Position | undefined;
  /** The `req` of the join in flight; says wait for its reply (they come in its `missed`). */
  #joining: number | undefined;
  /** The server could not read the history (`"epoch": ""`): says wait for its `resync`, and the recovery after it. */
  #unread = false;
  #closed = false;

  /** Made by `Client.join`. */
  constructor(host: RoomHost, channel: string, options: JoinOptions) {
    super();
    this.#host = host;
    this.channel = channel;
    this.#presence = options.presence === true ? new PresenceList() : undefined;
    this.#recover = options.recover !== false;
  }

  /** Whether the room has left or was refused (it emits nothing more). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The members: id to ref to info, one ref per connection (the entries without an id under
   * `""`); a new Map each call, empty without `presence`.
   */
  members(): Map<string, Map<string, Readonly<Record<string, unknown>> | undefined>> {
    return this.#presence?.members() ?? new Map();
  }

  /**
   * Whether the member list may be incomplete or stale: the server's last snapshot said
   * `partial` (it could not reach every node). A later snapshot without it (the server sends one
   * once it can) makes the list whole again; a `presence` event tells each change of this.
   */
  get partial(): boolean {
    return this.#presence?.partial ?? false;
  }

  /**
   * Says `value` to the channel (as JSON). Sent at once, or once the client is connected
   * (rejoins first), within its offline bounds.
   * @returns a promise that resolves once written to an open connection (delivery is at most
   * once without history), and rejects after the room left, with the offline queue full, or
   * with no connection within the queue timeout.
   */
  say(value: unknown): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`not in ${this.channel}: the room was left or refused`));
    return this.#host.sendQueued({ say: value, to: this.channel });
  }

  /** Leaves the channel; the room emits nothing more. */
  leave(): void {
    if (this.#closed) return;
    this.#host.sendNow({ leave: this.channel });
    this.#close("left");
  }

  /** Sends the join (a rejoin with `recover` from the last say seen, and with presence). */
  join(): void {
    if (this.#closed) return;
    this.#joining = this.#host.nextReq();
    this.#unread = false;
    this.#presence?.expectSnapshot();
    const recover = this.#recover && this.#position !== undefined ? { recover: this.#position } : {};
    const presence = this.#presence === undefined ? {} : { presence: true };
    this.#host.sendNow({ join: this.channel, ...presence, ...recover, req: this.#joining });
  }

  /** Takes a frame about this channel: a `joined`, a refusal, a say or presence. */
  receive(frame: Record<string, unknown>): void {
    if (this.#closed) return;
    if ("joined" in frame) this.#joined(frame);
    else if ("error" in frame) this.#refused(frame);
    else if ("say" in frame) this.#say(frame);
    else if ("presence" in frame) this.#presenceFrame(frame);
  }

  /** Stops the room without sending anything (the client closed or the join was refused). */
  close(reason: string): void {
    if (!this.#closed) this.#close(reason);
  }

  #close(reason: string): void {
    this.#closed = true;
    this.#host.forget(this);
    this.emit("closed", { reason });
  }

  #joined(frame: Record<string, unknown>): void {
    if (frame.req !== this.#joining) return; // the reply to an earlier join of this room
    this.#joining = undefined;
    // no position to give (its Redis is unreachable): keep ours for the recovery its resync will ask for
    if (frame.epoch === "" && this.#position !== undefined) {
      this.#unread = true;
      return;
    }
    const missed = Array.isArray(frame.missed) ? (frame.missed as Record<string, unknown>[]).map(messageOf) : [];
    if (typeof frame.epoch === "string" && typeof frame.offset === "number") {
      this.#position = { epoch: frame.epoch, offset: frame.offset };
    }
    this.emit("joined", { recovered: frame.recovered === true, missed });
    for (const message of missed) this.emit("message", message);
    if (this.#presence !== undefined && Array.isArray(frame.presence)) {
      this.#snapshot(this.#presence, frame.presence as PresenceEntry[], frame.partial === true);
    }
  }

  #refused(frame: Record<string, unknown>): void {
    if (frame.req !== this.#joining || typeof frame.error !== "string") return;
    this.#close(frame.error); // forbidden, too many channels: joining again would be refused again
  }

  #say(frame: Record<string, unknown>): void {
    if (this.#joining !== undefined || this.#unread) return; // in the missed of the join under way, or of the next one
    const { offset, epoch } = frame;
    if (typeof offset === "number" && typeof epoch === "string") {
      const position = this.#position;
      if (position !== undefined && epoch === position.epoch && offset <= position.offset) return; // seen already
      if (position !== undefined && (epoch !== position.epoch || offset > position.offset + 1)) return this.join(); // a hole, or offsets started again: recover
      this.#position = { epoch, offset };
    }
    this.emit("message", messageOf(frame));
  }

  #presenceFrame(frame: Record<string, unknown>): void {
    const list = this.#presence;
    if (list === undefined) return;
    if (Array.isArray(frame.members)) return this.#snapshot(list, frame.members as PresenceEntry[], frame.partial === true);
    if (!Array.isArray(frame.joins) || !Array.isArray(frame.leaves)) return; // counts: not kept
    const change = list.diff({ joins: frame.joins as PresenceEntry[], leaves: frame.leaves as string[] });
    if (change !== undefined) this.#tell(change);
  }

  /** Replaces the list with a snapshot; tells what changed, or that it became partial or whole. */
  #snapshot(list: PresenceList, entries: PresenceEntry[], partial: boolean): void {
    const was = list.partial;
    this.#tell(list.snapshot(entries, partial), was !== partial);
  }

  #tell(change: { joins: readonly PresenceEntry[]; leaves: readonly PresenceEntry[] }, always = false): void {
    if (always || change.joins.length > 0 || change.leaves.length > 0) this.emit("presence", change);
  }
}

function messageOf(frame: Record<string, unknown>): RoomMessage {
  const message: { say: unknown; from?: string; offset?: number } = { say: frame.say };
  if (typeof frame.from === "string") message.from = frame.from;
  if (typeof frame.offset === "number") message.offset = frame.offset;
  return message;
}
