import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import { Payload } from "../transports/payload.js";
import type { ChannelId } from "../types.js";
import type { Broker, BrokerHandle, BrokerStats } from "./broker.js";
import { channelOf, encodeEnvelope, epochOf, isBinary, isChannel, originOf, payloadStart, sentBy, seqOf, splitBatch } from "./envelope.js";
import { type Followed, record, type Seen } from "./followed.js";
import { Sequences, seqAfter } from "./sequences.js";

export type { Followed } from "./followed.js";

/**
 * The most broadcasts from one origin a receiver counts as lost in one gap on its word alone. A
 * larger jump (anyone who can write to the broker can send one) is dropped as invalid, unless the
 * origin's next envelope follows it: then the origin really moved on, and its sequence is taken up
 * from there.
 */
export const MAX_GAP = 65_536;

/**
 * The most origins a receiver follows per channel: past it the one followed longest (but the
 * first) is forgotten, so made-up origins cannot grow memory.
 */
export const MAX_ORIGINS = 4096;

/** What a node's broker link reports in `stats().broker`: the broker's counts and the receiver's. */
export interface BrokerLinkStats extends BrokerStats {
  /** Envelopes from other nodes delivered to this node's members (each one counted once). */
  received: number;
  /** Broadcasts from other nodes that never arrived: gaps in an origin's sequence for a channel. */
  lost: number;
  /**
   * Received bytes that were not what a node sends, dropped: not an envelope (another version,
   * truncated), text that is not UTF-8, an envelope for another channel than the one it came on,
   * a repeat, or a sequence number jumping more than MAX_GAP ahead.
   */
  invalid: number;
  /**
   * Envelopes for a channel with no member here: sent while this node's unsubscription was on its
   * way. Anything else here means the broker delivers channels this node is not subscribed to.
   */
  stray: number;
}

/**
 * A `Channels`'s side of a broker: it encodes each broadcast once into an envelope, numbers it,
 * follows the table's channel lifecycle with subscriptions, and on the way in drops this node's
 * echo, counts gaps and hands one `Payload` per envelope to the local fan-out.
 *
 * Sequence numbers are per (origin, channel), so a node that is in some channels only never sees
 * a gap made by the others. The origin keeps at most MAX_SEQUENCES of them (`Sequences`); each
 * new one gets a fresh epoch, and a receiver that meets a new epoch from an
 * origin counts the new sequence's missing head as lost instead of comparing numbers across
 * sequences. A receiver keeps per live channel the last (epoch, seq) of each origin, from the
 * channel's subscription (the baseline) until its unsubscription.
 */
export class BrokerLink<Target> {
  /** This node's id in envelopes: 48 random bits, so nodes on many machines need no registry. */
  readonly origin = randomBytes(6).readUIntBE(0, 6);
  readonly #broker: Broker;
  readonly #deliver: (target: Target, payload: Payload) => void;
  readonly #sequences = new Sequences();
  /** The live channels: here exactly while they have local members. */
  readonly #followed = new Map<ChannelId, Followed<Target>>();
  /** Subscriptions made and not yet acknowledged, by channel. */
  readonly #pending = new Map<ChannelId, Promise<boolean>>();
  readonly #counts = { received: 0, lost: 0, invalid: 0, stray: 0 };
  #closed = false;

  /**
   * @param deliver writes a received broadcast to this node's members of a channel, given its
   *   `target` (what `created` was told).
   * @throws {Error} if the broker is already started by another `Channels`.
   */
  constructor(broker: Broker, deliver: (target: Target, payload: Payload) => void) {
    this.#broker = broker;
    this.#deliver = deliver;
    broker.start(this.#receive, this.origin);
  }

  /**
   * Encodes `message` for `channel` with its next sequence number and publishes it.
   * @param followed the channel's record (what `created` returned) while it has local members.
   */
  publish(channel: ChannelId, message: string | Uint8Array, followed?: Followed<Target>): void {
    let epoch: number;
    let seq: number;
    if (followed === undefined) {
      const sequence = this.#sequences.of(channel);
      epoch = sequence.epoch;
      seq = this.#sequences.next(sequence);
    } else {
      if (followed.outEpoch === 0) {
        const sequence = this.#sequences.take(channel);
        followed.outEpoch = sequence.epoch;
        followed.outSeq = sequence.seq;
      }
      epoch = followed.outEpoch;
      seq = followed.outSeq = seqAfter(followed.outSeq);
    }
    this.#broker.publish(channel, encodeEnvelope(this.origin, epoch, seq, channel, message), followed);
  }

  /**
   * The table created `channel` (its first local member joined): subscribe, with a fresh baseline.
   * @param target what `deliver` is given for the channel's broadcasts (the table's channel), until `deleted`.
   */
  readonly created = (channel: ChannelId, target: Target): Followed<Target> => {
    const followed = record(channel, target);
    this.#followed.set(channel, followed);
    const pending = this.#broker.subscribe(channel, followed);
    this.#pending.set(channel, pending);
    void pending.then(() => {
      if (this.#pending.get(channel) === pending) this.#pending.delete(channel);
    });
    return followed;
  };

  /** The table deleted `channel` (its last local member left): unsubscribe, forget its baseline, keep its sequence. */
  readonly deleted = (channel: ChannelId): void => {
    const followed = this.#followed.get(channel);
    if (followed !== undefined) {
      followed.gone = true;
      if (followed.outEpoch !== 0) this.#sequences.keep(channel, followed.outEpoch, followed.outSeq);
    }
    this.#followed.delete(channel);
    this.#pending.delete(channel);
    this.#broker.unsubscribe(channel);
  };

  /** The subscription to `channel` being made, if one is waiting for its acknowledgement. */
  pending(channel: ChannelId): Promise<boolean> | undefined {
    return this.#pending.get(channel);
  }

  stats(): BrokerLinkStats {
    return { ...this.#broker.stats(), ...this.#counts };
  }

  /** Stops delivering what arrives and closes the broker. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#broker.close();
  }

  /**
   * What the broker received: this node's own echo is dropped before anything is decoded; a batch
   * is split. `handle` is the channel's record, given to the broker with its subscription.
   */
  readonly #receive = (bytes: Buffer, arrivedOn?: ChannelId, handle?: BrokerHandle): void => {
    if (this.#closed || sentBy(bytes, this.origin)) return; // our own broadcast, back from the broker: delivered already
    this.#arrivedOn = arrivedOn;
    this.#arrivedFor = handle as Followed<Target> | undefined;
    if (!splitBatch(bytes, this.#receiveOne)) this.#counts.invalid++;
  };

  /** The channel the message being split arrived on, and the record the broker handed back with it. */
  #arrivedOn: ChannelId | undefined;
  #arrivedFor: Followed<Target> | undefined;

  /** The record of `channel`: the one the broker handed back if it is that channel's and not gone, else looked up. */
  #recordOf(channel: ChannelId): Followed<Target> | undefined {
    const handed = this.#arrivedFor;
    return handed !== undefined && !handed.gone && handed.channel === channel ? handed : this.#followed.get(channel);
  }

  readonly #receiveOne = (bytes: Buffer): void => {
    const arrivedOn = this.#arrivedOn;
    const end = payloadStart(bytes);
    if (end < 0 || (arrivedOn !== undefined && !isChannel(bytes, end, arrivedOn))) {
      this.#counts.invalid++;
      return;
    }
    const origin = originOf(bytes);
    if (origin === this.origin) return; // an envelope of ours in a batch of another origin's: made up
    const followed = this.#recordOf(arrivedOn ?? channelOf(bytes, end));
    if (followed === undefined) {
      this.#counts.stray++; // the last local member left while this was on its way
      return;
    }
    const binary = isBinary(bytes);
    const payload = bytes.subarray(end);
    if (!binary && !isUtf8(payload)) {
      this.#counts.invalid++; // as a text frame it would make every WebSocket member close (RFC 6455 §8.1)
      return;
    }
    const epoch = epochOf(bytes);
    const seq = seqOf(bytes);
    const seen = followed.origin === origin ? followed : followed.others?.get(origin);
    if (seen === undefined) this.#first(followed, origin, epoch, seq);
    else if (!this.#follows(seen, epoch, seq)) return;
    this.#counts.received++;
    this.#deliver(followed.target, Payload.fromBytes(payload, binary));
  };

  /** The first envelope of `origin` on a followed channel: its baseline. */
  #first(followed: Followed<Target>, origin: number, epoch: number, seq: number): void {
    if (followed.origin === -1) {
      followed.origin = origin;
      followed.epoch = epoch;
      followed.seq = seq;
      return;
    }
    followed.others ??= new Map();
    if (followed.others.size >= MAX_ORIGINS - 1) followed.others.delete(followed.others.keys().next().value as number);
    followed.others.set(origin, { epoch, seq, jumped: undefined });
  }

  /**
   * Whether (epoch, seq) comes after `seen` in its origin's sequence: if so it becomes the last
   * seen, and what it skipped is counted lost; if not (a repeat, a jump past MAX_GAP) it is counted
   * invalid. Comparisons are modulo 2^32, so that a sequence wrapping around is not a repeat.
   */
  #follows(seen: Seen, epoch: number, seq: number): boolean {
    // a new sequence: its first seq - 1 envelopes never came
    const gap = seen.epoch !== epoch ? (seq - 1) >>> 0 : ((seq - seen.seq) >>> 0) - 1;
    const confirmed = seen.jumped !== undefined && seen.jumped.epoch === epoch && (seq - seen.jumped.seq) >>> 0 === 1;
    if (gap === -1 || (gap > MAX_GAP && !confirmed)) {
      if (gap !== -1) seen.jumped = { epoch, seq };
      this.#counts.invalid++;
      return false;
    }
    if (gap <= MAX_GAP) this.#counts.lost += gap; // a confirmed jump's gap is unknown: the jump itself was counted invalid
    seen.epoch = epoch;
    seen.seq = seq;
    seen.jumped = undefined;
    return true;
  }
}
