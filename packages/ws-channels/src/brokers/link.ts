import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import { Payload } from "../transports/payload.js";
import type { ChannelId } from "../types.js";
import type { Broker, BrokerStats } from "./broker.js";
import { decodeEnvelope, encodeEnvelope, sentBy, splitBatch } from "./envelope.js";

/**
 * The most channels whose outgoing sequence a node remembers at once. Past it, the channel
 * broadcast to least recently starts a new sequence (a new epoch) when it is next broadcast to:
 * memory stays bounded however many short-lived channels a node broadcasts to.
 */
export const MAX_SEQUENCES = 65_536;

/**
 * The most broadcasts from one origin a receiver counts as lost in one gap on its word alone. A
 * larger jump (anyone who can write to the broker can send one) is dropped as invalid, unless the
 * origin's next envelope follows it: then the origin really moved on, and its sequence is taken up
 * from there.
 */
export const MAX_GAP = 65_536;

/** The most origins a receiver follows per channel: past it the one heard from least recently is forgotten, so made-up origins cannot grow memory. */
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

/** The last envelope received from one origin on one channel. */
interface Seen {
  epoch: number;
  seq: number;
  /** The last envelope dropped for jumping too far: if the next one follows it, the origin moved on. */
  jumped?: { epoch: number; seq: number } | undefined;
}

/** The outgoing sequence of one channel at this node. */
interface Sequence {
  readonly epoch: number;
  seq: number;
}

/**
 * A `Channels`'s side of a broker: it encodes each broadcast once into an envelope, numbers it,
 * follows the table's channel lifecycle with subscriptions, and on the way in drops this node's
 * echo, counts gaps and hands one `Payload` per envelope to the local fan-out.
 *
 * Sequence numbers are per (origin, channel), so a node that is in some channels only never sees
 * a gap made by the others. The origin keeps at most MAX_SEQUENCES of them (least recently used
 * first out); each new one gets a fresh epoch, and a receiver that meets a new epoch from an
 * origin counts the new sequence's missing head as lost instead of comparing numbers across
 * sequences. A receiver keeps per live channel the last (epoch, seq) of each origin, from the
 * channel's subscription (the baseline) until its unsubscription.
 */
export class BrokerLink {
  /** This node's id in envelopes: 48 random bits, so nodes on many machines need no registry. */
  readonly origin = randomBytes(6).readUIntBE(0, 6);
  readonly #broker: Broker;
  readonly #deliver: (channel: ChannelId, payload: Payload) => void;
  readonly #sequences = new Map<ChannelId, Sequence>();
  #epochs = 0;
  /** Per live channel, per origin, the last envelope seen. A channel is here exactly while it has local members. */
  readonly #seen = new Map<ChannelId, Map<number, Seen>>();
  /** Subscriptions made and not yet acknowledged, by channel. */
  readonly #pending = new Map<ChannelId, Promise<boolean>>();
  readonly #counts = { received: 0, lost: 0, invalid: 0, stray: 0 };
  #closed = false;

  /**
   * @param deliver writes a received broadcast to this node's members of `channel`.
   * @throws {Error} if the broker is already started by another `Channels`.
   */
  constructor(broker: Broker, deliver: (channel: ChannelId, payload: Payload) => void) {
    this.#broker = broker;
    this.#deliver = deliver;
    broker.start(this.#receive, this.origin);
  }

  /** Encodes `message` for `channel` with its next sequence number and publishes it. */
  publish(channel: ChannelId, message: string | Uint8Array): void {
    let sequence = this.#sequences.get(channel);
    if (sequence === undefined) {
      if (this.#sequences.size >= MAX_SEQUENCES) this.#sequences.delete(this.#sequences.keys().next().value as ChannelId);
      this.#epochs = (this.#epochs + 1) >>> 0;
      sequence = { epoch: this.#epochs, seq: 0 };
    } else {
      this.#sequences.delete(channel); // re-inserted below: the Map's order is least recently used first
    }
    this.#sequences.set(channel, sequence);
    sequence.seq = (sequence.seq + 1) >>> 0;
    this.#broker.publish(channel, encodeEnvelope(this.origin, sequence.epoch, sequence.seq, channel, message));
  }

  /** The table created `channel` (its first local member joined): subscribe, with a fresh baseline. */
  created(channel: ChannelId): void {
    this.#seen.set(channel, new Map());
    const pending = this.#broker.subscribe(channel);
    this.#pending.set(channel, pending);
    void pending.then(() => {
      if (this.#pending.get(channel) === pending) this.#pending.delete(channel);
    });
  }

  /** The table deleted `channel` (its last local member left): unsubscribe and forget its baseline. */
  deleted(channel: ChannelId): void {
    this.#seen.delete(channel);
    this.#pending.delete(channel);
    this.#broker.unsubscribe(channel);
  }

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

  /** What the broker received: this node's own echo is dropped before anything is decoded; a batch is split. */
  readonly #receive = (bytes: Buffer, arrivedOn?: ChannelId): void => {
    if (this.#closed || sentBy(bytes, this.origin)) return; // our own broadcast, back from the broker: delivered already
    this.#arrivedOn = arrivedOn;
    if (!splitBatch(bytes, this.#receiveOne)) this.#counts.invalid++;
  };

  /** The channel the message being split arrived on. */
  #arrivedOn: ChannelId | undefined;

  readonly #receiveOne = (bytes: Buffer): void => {
    const arrivedOn = this.#arrivedOn;
    const envelope = decodeEnvelope(bytes);
    if (envelope === undefined || (arrivedOn !== undefined && envelope.channel !== arrivedOn)) {
      this.#counts.invalid++;
      return;
    }
    const { origin, epoch, seq, channel } = envelope;
    if (origin === this.origin) return; // an envelope of ours in a batch of another origin's: made up
    const origins = this.#seen.get(channel);
    if (origins === undefined) {
      this.#counts.stray++; // the last local member left while this was on its way
      return;
    }
    if (!envelope.binary && !isUtf8(envelope.payload)) {
      this.#counts.invalid++; // as a text frame it would make every WebSocket member close (RFC 6455 §8.1)
      return;
    }
    const seen = origins.get(origin);
    if (seen === undefined) {
      if (origins.size >= MAX_ORIGINS) origins.delete(origins.keys().next().value as number);
      origins.set(origin, { epoch, seq });
    } else if (!this.#follows(seen, epoch, seq)) return;
    this.#counts.received++;
    this.#deliver(channel, Payload.fromBytes(envelope.payload, envelope.binary));
  };

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
