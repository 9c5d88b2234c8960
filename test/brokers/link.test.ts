import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { Channels } from "ws-channels";
import type { Broker, BrokerEvents, BrokerHandle, BrokerStats } from "../../packages/ws-channels/src/brokers/broker.js";
import { encodeBatch, encodeEnvelope } from "../../packages/ws-channels/src/brokers/envelope.js";
import { MAX_ORIGINS } from "../../packages/ws-channels/src/brokers/link.js";
import { MAX_SEQUENCES } from "../../packages/ws-channels/src/brokers/sequences.js";
import type { ChannelId } from "../../packages/ws-channels/src/types.js";
import { decodeEnvelope, type Envelope } from "./decode.js";

/** A broker in memory: it keeps what is published and hands on what a test makes arrive. */
class MemoryBroker extends EventEmitter<BrokerEvents> implements Broker {
  readonly published: Envelope[] = [];
  readonly handles = new Map<ChannelId, BrokerHandle | undefined>();
  /** The handle each publish came with, in publish order. */
  readonly publishedWith: (BrokerHandle | undefined)[] = [];
  receive: (envelope: Buffer, channel?: ChannelId, handle?: BrokerHandle) => void = () => undefined;
  start(receive: (envelope: Buffer, channel?: ChannelId, handle?: BrokerHandle) => void): void {
    this.receive = receive;
  }
  subscribe(channel: ChannelId, handle?: BrokerHandle): Promise<boolean> {
    this.handles.set(channel, handle);
    return Promise.resolve(true);
  }
  unsubscribe(channel: ChannelId): void {
    this.handles.delete(channel);
  }
  /** Makes `envelope` arrive on `channel` as RedisBroker hands it on: with the channel's handle while subscribed. */
  arrive(envelope: Buffer, channel: ChannelId): void {
    this.receive(envelope, channel, this.handles.get(channel));
  }
  publish(_channel: ChannelId, envelope: Buffer, handle?: BrokerHandle): void {
    this.published.push(decodeEnvelope(envelope) as Envelope);
    this.publishedWith.push(handle);
  }
  stats(): BrokerStats {
    return { connected: true, published: this.published.length, unpublished: 0, subscriptions: 0 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A node on a MemoryBroker, a member to move in and out, and the last envelope it published. */
function node(): { broker: MemoryBroker; channels: Channels; member: { send(): void }; last(): Envelope } {
  const broker = new MemoryBroker();
  return {
    broker,
    channels: new Channels({ broker }),
    member: { send: () => undefined },
    last: () => broker.published[broker.published.length - 1] as Envelope,
  };
}

describe("the broker link", () => {
  it(`past ${MAX_SEQUENCES} channels forgets the sequences broadcast to least recently: they start a new epoch, recent ones go on`, async () => {
    const { channels, last } = node();
    await channels.broadcast("old", "1");
    const oldEpoch = last().epoch;
    await channels.broadcast("recent", "1");
    const recentEpoch = last().epoch;
    // MAX_SEQUENCES other channels; "recent" is broadcast to again near the end, "old" never
    for (let i = 0; i < MAX_SEQUENCES; i++) {
      if (i === MAX_SEQUENCES - 10) await channels.broadcast("recent", "2");
      await channels.broadcast(`other-${i}`, "x");
    }
    await channels.broadcast("recent", "3");
    expect(last()).toMatchObject({ channel: "recent", epoch: recentEpoch, seq: 3 });
    await channels.broadcast("old", "2");
    expect(last().channel).toBe("old");
    expect(last().epoch).not.toBe(oldEpoch);
    expect(last().seq).toBe(1);
    await channels.close();
  });

  it("keeps a channel's sequence when its last member leaves and one joins again: one epoch, seq going on", async () => {
    const { broker, channels, member, last } = node();
    channels.join("room", member);
    await channels.broadcast("room", "1"); // through the channel's record
    const { epoch } = last();
    channels.leave("room", member);
    await channels.broadcast("room", "2"); // no local member: through the sequences Map
    channels.join("room", member);
    await channels.broadcast("room", "3"); // a new record, the same sequence
    expect(broker.published.map(({ epoch, seq }) => [epoch, seq])).toEqual([
      [epoch, 1],
      [epoch, 2],
      [epoch, 3],
    ]);
    await channels.close();
  });

  it("keeps a live channel's sequence however many others the node broadcasts to: after its last member leaves and one joins, the same epoch goes on", async () => {
    const { channels, member, last } = node();
    channels.join("room", member);
    await channels.broadcast("room", "1");
    const { epoch } = last();
    for (let i = 0; i < MAX_SEQUENCES; i++) await channels.broadcast(`other-${i}`, "x"); // the sequences Map evicts some
    await channels.broadcast("room", "2"); // its record holds its sequence
    channels.leave("room", member);
    channels.join("room", member);
    await channels.broadcast("room", "3");
    expect(last()).toMatchObject({ channel: "room", epoch, seq: 3 });
    await channels.close();
  });

  it("follows every origin of a channel apart, the first one and up to MAX_ORIGINS - 1 others: gaps counted per origin, repeats dropped", async () => {
    const broker = new MemoryBroker();
    const channels = new Channels({ broker });
    const got: unknown[] = [];
    channels.join("room", { send: (data: unknown) => void got.push(data) });
    const arrive = (origin: number, seq: number): void =>
      broker.receive(encodeEnvelope(origin, 1, seq, "room", `${origin}:${seq}`), "room");
    arrive(1, 1);
    arrive(2, 5); // a baseline: what came before this node followed "room" is not counted
    arrive(1, 2);
    arrive(2, 7); // 6 never came
    arrive(1, 2); // a repeat
    arrive(1, 4); // 3 never came
    await new Promise((resolve) => setImmediate(resolve));
    expect(got).toEqual(["1:1", "2:5", "1:2", "2:7", "1:4"]);
    expect(channels.stats().broker).toMatchObject({ received: 5, lost: 2, invalid: 1 });
    // MAX_ORIGINS origins in all: every one still followed
    for (let origin = 100; origin < 100 + MAX_ORIGINS - 2; origin++) arrive(origin, 1);
    arrive(2, 9); // 8 never came
    expect(channels.stats().broker).toMatchObject({ lost: 3, invalid: 1 });
    // one more: the other origin followed longest (2) is forgotten, never the first (1)
    arrive(99, 1);
    arrive(2, 20); // a new baseline: 10 to 19 are not counted
    arrive(1, 6); // still followed: 5 never came
    expect(channels.stats().broker).toMatchObject({ lost: 4, invalid: 1 });
    await channels.close();
  });

  it("drops an envelope whose channel is not the one it arrived on, whatever its kind", () => {
    const broker = new MemoryBroker();
    const channels = new Channels({ broker });
    channels.join("1", { send: () => undefined });
    channels.join(1, { send: () => undefined });
    broker.receive(encodeEnvelope(9, 1, 1, "2", "x"), "1");
    broker.receive(encodeEnvelope(9, 1, 1, 1, "x"), "1"); // the number 1 on the string's channel
    broker.receive(encodeEnvelope(9, 1, 1, "1", "x"), 1);
    broker.receive(encodeEnvelope(9, 1, 1, "1".repeat(200), "x"), "1".repeat(199)); // past the scratch's room
    expect(channels.stats().broker).toMatchObject({ received: 0, invalid: 4 });
    broker.receive(encodeEnvelope(9, 1, 1, "1", "x"), "1");
    broker.receive(encodeEnvelope(9, 1, 1, 1, "x"), 1);
    expect(channels.stats().broker).toMatchObject({ received: 2, invalid: 4 });
    // ASCII names of one length, compared unit by unit; names past ASCII, compared as UTF-8 bytes
    for (const name of ["ab", "aé", "a\u{1F600}"]) channels.join(name, { send: () => undefined });
    const wrong = [
      ["ac", "ab"],
      ["ba", "ab"],
      ["ab", "aé"],
      ["aé", "ab"],
      ["aè", "aé"],
      ["a\u{1F601}", "a\u{1F600}"],
      ["aé", "a\u{1F600}"],
    ];
    for (const [sent, on] of wrong) broker.receive(encodeEnvelope(9, 1, 1, sent as string, "x"), on);
    expect(channels.stats().broker).toMatchObject({ received: 2, invalid: 11 });
    for (const name of ["ab", "aé", "a\u{1F600}"]) broker.receive(encodeEnvelope(9, 1, 1, name, "x"), name);
    expect(channels.stats().broker).toMatchObject({ received: 5, invalid: 11 });
    void channels.close();
  });
  it("hands a batch to the channel's record the broker gave back, and what follows a leave of its last member is stray", async () => {
    const broker = new MemoryBroker();
    const channels = new Channels({ broker });
    const got: unknown[] = [];
    const member = {
      send: (data: unknown) => {
        got.push(data);
        if (data === "2") channels.leave("room", member);
      },
    };
    channels.join("room", member);
    const batch = (seqs: number[]) => encodeBatch(seqs.map((seq) => encodeEnvelope(9, 1, seq, "room", String(seq))));
    broker.arrive(batch([1, 2, 3]), "room");
    expect(got).toEqual(["1", "2"]);
    expect(channels.stats().broker).toMatchObject({ received: 2, stray: 1, lost: 0 });
    channels.join("room", member); // a new record, given to the broker with the new subscription
    broker.arrive(batch([4]), "room");
    expect(got).toEqual(["1", "2", "4"]);
    expect(channels.stats().broker).toMatchObject({ received: 3, stray: 1, lost: 0 });
    expect(channels.stats()).toMatchObject({ delivered: 3, failed: 0, dropped: 0, inFlight: 0 }); // received ones count as local ones
    await channels.close();
  });
  it("believes a handle only while it is the record of the channel it came with: a stale or another channel's handle is looked past", async () => {
    const broker = new MemoryBroker();
    const channels = new Channels({ broker });
    const got: string[] = [];
    const member = (name: string) => ({ send: (data: unknown) => void got.push(`${name} ${String(data)}`) });
    const room = member("room");
    channels.join("room", room);
    channels.join("other", member("other"));
    const stale = broker.handles.get("room");
    channels.leave("room", room);
    channels.join("room", room); // a new record: the first one is gone
    broker.receive(encodeEnvelope(9, 1, 1, "room", "a"), "room", stale);
    broker.receive(encodeEnvelope(9, 1, 2, "room", "b"), "room", broker.handles.get("other"));
    broker.arrive(encodeEnvelope(9, 1, 3, "other", "c"), "room"); // the right handle, another channel's envelope
    expect(got).toEqual(["room a", "room b"]);
    expect(channels.stats().broker).toMatchObject({ received: 2, invalid: 1, stray: 0 });
    await channels.close();
  });
  it("publishes a live channel's broadcasts with the handle its subscription was given, and others with none", async () => {
    const { broker, channels, member } = node();
    channels.join("room", member);
    const handle = broker.handles.get("room");
    expect(handle).toMatchObject({ broker: undefined }); // the broker's slot, empty until a broker fills it
    await channels.broadcast("room", "a");
    await channels.broadcast("elsewhere", "b"); // no local member: not live here
    channels.leave("room", member);
    await channels.broadcast("room", "c");
    expect(broker.publishedWith).toEqual([handle, undefined, undefined]);
    expect(broker.published.map(({ channel }) => channel)).toEqual(["room", "elsewhere", "room"]);
    await channels.close();
  });
  it("writes a received broadcast through the writer pool when it cannot go at once: a sharded channel, a large one", async () => {
    const broker = new MemoryBroker();
    const channels = new Channels({ broker, sharder: (channel) => (channel === "sharded" ? 4 : 1) });
    const got = new Map<string, number>();
    const member = (name: string) => ({ send: () => void got.set(name, (got.get(name) ?? 0) + 1) });
    for (let i = 0; i < 8; i++) channels.join("sharded", member(`s${i}`));
    for (let i = 0; i < 300; i++) channels.join("large", member(`l${i}`)); // more than one slice's writes
    broker.arrive(encodeEnvelope(9, 1, 1, "sharded", "x"), "sharded");
    broker.arrive(encodeEnvelope(9, 1, 1, "large", "x"), "large");
    await channels.close(); // settles every broadcast under way, received ones too
    expect(got.size).toBe(308);
    expect([...got.values()].every((count) => count === 1)).toBe(true);
    expect(channels.stats()).toMatchObject({ delivered: 308, inFlight: 0 });
  });
});
