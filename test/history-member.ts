import type { WsClient } from "./helpers.js";
import type { Delivery, Joined } from "./history-conformance.js";

/**
 * A member of one channel that follows the protocol's rules for history as a client does
 * (ws-channels/client's room): it keeps the last offset it has in order; a hole in the offsets or
 * `{"resync": CH}` makes it join again with `recover` from there, and says arriving meanwhile are
 * left to the reply's `missed`; a reply without a position (`"epoch": ""`) keeps its own until the
 * resync that follows. It records what it took, in order, and anything the server should
 * not have sent.
 */
export class Member {
  /** Offsets taken, in order: live says and `missed`. */
  readonly taken: number[] = [];
  /** Offsets that came in a `missed`. */
  readonly recovered: number[] = [];
  /** Offsets of every live say, as they came, during joins too (a hole here is what a recovery filled). */
  readonly live: number[] = [];
  /** Replies to a recovery that were not `recovered: true`. */
  readonly refused: Joined[] = [];
  resyncs = 0;
  /** Live says at or below the position a reply gave: a say twice. */
  stale = 0;
  position: { epoch: string; offset: number } | undefined;
  #joining = false;
  /** A reply said `"epoch": ""` (the server could not read the history): it keeps its position and waits for resync. */
  #unread = false;

  constructor(
    readonly client: WsClient,
    readonly channel: string,
  ) {
    client.ws.on("message", (data: Buffer) => this.#frame(JSON.parse(data.toString()) as Record<string, unknown>));
  }

  /** Joins, with `recover` from its position if it has one. */
  join(): void {
    this.#joining = true;
    this.#unread = false;
    const recover = this.position === undefined ? {} : { recover: this.position };
    this.client.send({ join: this.channel, ...recover });
  }

  /** Whether it is in the channel with no join under way, at `offset`. */
  at(offset: number): boolean {
    return !this.#joining && !this.#unread && this.position?.offset === offset;
  }

  #frame(frame: Record<string, unknown>): void {
    if (frame.resync === this.channel) {
      this.resyncs++;
      if (!this.#joining) this.join();
    } else if (frame.joined === this.channel) {
      const reply = frame as Joined;
      this.#joining = false;
      if (reply.epoch === "" && this.position !== undefined) {
        this.#unread = true;
        return;
      }
      if (this.position !== undefined && reply.recovered !== true) this.refused.push(reply);
      for (const m of reply.missed ?? []) {
        this.taken.push(m.offset);
        this.recovered.push(m.offset);
      }
      this.position = { epoch: reply.epoch, offset: reply.offset };
    } else if (frame.to === this.channel && typeof frame.offset === "number") {
      const { offset, epoch } = frame as Delivery;
      this.live.push(offset);
      if (this.#joining || this.#unread) return; // in the missed of the join under way, or of the next one
      const position = this.position as { epoch: string; offset: number };
      if (epoch === position.epoch && offset <= position.offset) this.stale++;
      else if (epoch !== position.epoch || offset > position.offset + 1) this.join();
      else {
        this.taken.push(offset);
        this.position = { epoch, offset };
      }
    }
  }
}
