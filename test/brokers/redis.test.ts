import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type Broker, Channels, type ChannelsStats } from "ws-channels";
import { RedisBroker, RedisConnections } from "ws-channels/redis";
import { until, within } from "../helpers.js";
import { conformance, fresh, type NodeHandle, receivedAtLeast, reset, stats, texts } from "./conformance.js";
import { createNode, type TestNode } from "./fixtures/node.mjs";
import { RedisServer } from "./redis-server.js";

const server = new RedisServer();
let admin: Redis;
const PREFIX = "conformance";

/** The Redis channel name RedisBroker uses for `channel`. */
const redisName = (channel: string | number): string => `${PREFIX}:${typeof channel === "number" ? "n" : "s"}:${channel}`;
const numsub = async (channel: string | number): Promise<number> => {
  const [, count] = (await admin.pubsub("NUMSUB", redisName(channel))) as [string, number];
  return Number(count);
};

/**
 * A node: a Channels on its own RedisBroker, with members m0 and m1. The broker makes two
 * connections of its own, or with `shared` takes connections it shares (as a server's id claims
 * do), and leaves them open when it closes.
 */
async function redisNode(shared?: RedisConnections): Promise<{ node: TestNode; broker: Broker; handle: NodeHandle }> {
  // A burst of 65,536 publishes can take Redis longer than the default 2 s to answer on a busy
  // machine; these nodes test order and loss, not the stalled-Redis timeout, so they wait longer.
  const broker = new RedisBroker(shared === undefined ? { url: server.path, prefix: PREFIX, timeoutMs: 20_000 } : { connections: shared });
  const up = new Promise((resolve) => broker.once("up", resolve));
  const node = await createNode(new Channels({ broker }), broker, ["m0", "m1"]);
  await within(up, "the broker to come up");
  return { node, broker, handle: { call: (command) => node.handle(command) } };
}

const setup = conformance("RedisBroker, three nodes on a real redis-server (the third on shared connections)", async () => {
  await server.start();
  admin = new Redis(server.path); // its offline queue waits out the fault test's restart
  admin.on("error", () => undefined); // it reconnects by itself after the fault test
  const shared = new RedisConnections({ url: server.path, prefix: PREFIX, timeoutMs: 20_000 });
  const nodes = await Promise.all([redisNode(), redisNode(), redisNode(shared)]);
  return {
    nodes: nodes.map(({ handle }) => handle),
    subscribers: numsub,
    close: async () => {
      for (const { node } of nodes) await node.close();
      expect(shared.commands.status).toBe("ready"); // the broker left them to their owner
      await shared.close();
      admin.disconnect();
      await server.stop();
    },
  };
});

const brokerStats = async (node: NodeHandle): Promise<NonNullable<ChannelsStats["broker"]>> => {
  const { broker } = await stats(node);
  if (broker === undefined) throw new Error("no broker stats");
  return broker;
};

describe("RedisBroker faults", () => {
  afterEach(() => reset(setup()));

  it("Redis killed and restarted on the same address during traffic: down, up, subscriptions restored exactly, local delivery never stopped, loss counted", async () => {
    const [a, b, c] = setup().nodes as [NodeHandle, NodeHandle, NodeHandle];
    const traffic = fresh("outage");
    const joinedDuringOutage = fresh("joined-in-outage");
    const leftDuringOutage = fresh("left-in-outage");
    for (const node of [a, b, c]) await node.call({ op: "tryJoin", channel: traffic, name: "m0" });
    await c.call({ op: "tryJoin", channel: leftDuringOutage, name: "m1" });
    const before = await Promise.all([a, b, c].map(brokerStats));

    // traffic from a, one broadcast per turn, until told to stop
    let sent = 0;
    let stop = false;
    let sentAtUp = 0;
    const pump = (async () => {
      while (!stop) {
        await a.call({ op: "broadcast", channel: traffic, data: `${sent++}` });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      await receivedAtLeast(b, "m0", 20);
      await server.kill();
      for (const node of [a, b, c]) await until(async () => ((await node.call({ op: "events" })) as string[]).includes("down"), "down");
      // during the outage: a's own member keeps getting a's broadcasts; joins answer at once
      const sentAtDown = sent;
      await receivedAtLeast(a, "m0", sentAtDown + 20);
      expect(await b.call({ op: "tryJoin", channel: joinedDuringOutage, name: "m1" })).toBe(true);
      await c.call({ op: "leave", channel: leftDuringOutage, name: "m1" });
      await until(async () => (await brokerStats(a)).unpublished > before[0]!.unpublished + 10, "unpublished broadcasts to be counted");

      await server.start();
      for (const node of [a, b, c]) {
        await until(
          async () => {
            const events = (await node.call({ op: "events" })) as string[];
            return events.lastIndexOf("up") > events.lastIndexOf("down");
          },
          "up",
          15_000,
        );
      }
      expect(await numsub(traffic)).toBe(3);
      expect(await numsub(joinedDuringOutage)).toBe(1);
      expect(await numsub(leftDuringOutage)).toBe(0);
      sentAtUp = sent;
      await receivedAtLeast(b, "m0", (await texts(b, "m0")).length + 20, 10_000);
    } finally {
      stop = true;
      await pump;
    }
    const total = sent;
    await receivedAtLeast(a, "m0", total);
    expect(await texts(a, "m0")).toEqual(Array.from({ length: total }, (_, i) => `${i}`));

    // b and c: in order, and every broadcast they did not get is counted as lost
    const afterA = await brokerStats(a);
    expect(afterA.unpublished - before[0]!.unpublished).toBeGreaterThan(0);
    expect(afterA.connected).toBe(true);
    for (const [i, node] of [b, c].entries()) {
      await until(async () => (await texts(node, "m0")).at(-1) === `${total - 1}`, "the last broadcast", 10_000);
      const got = (await texts(node, "m0")).map(Number);
      for (let k = 1; k < got.length; k++) expect(got[k]).toBeGreaterThan(got[k - 1] as number);
      const lost = (await brokerStats(node)).lost - before[i + 1]!.lost;
      expect(got.length + lost, "received + lost").toBe(total);
      expect(lost).toBeGreaterThan(0);
      expect(got).toContain(sentAtUp); // traffic flows again after up
    }
  }, 60_000);

  it("close() unsubscribes and quits its three connections (subscriber, commands, publisher)", async () => {
    const clients = async (): Promise<number> =>
      String(await admin.client("LIST"))
        .trim()
        .split("\n").length;
    const baseline = await clients();
    const { node, handle } = await redisNode();
    expect(await clients()).toBe(baseline + 3);
    const channel = fresh("closing");
    await handle.call({ op: "tryJoin", channel, name: "m0" });
    expect(await numsub(channel)).toBe(1);
    await node.close();
    await until(async () => (await clients()) === baseline, "the broker's connections to close");
    expect(await numsub(channel)).toBe(0);
  });

  it("an existing ioredis client: the broker publishes and subscribes on connections of its own to its server, and close() leaves it open", async () => {
    const client = new Redis(server.path);
    const listeners = [client.listenerCount("close"), client.listenerCount("ready")];
    const broker = new RedisBroker({ client, prefix: PREFIX });
    const up = new Promise((resolve) => broker.once("up", resolve));
    const channels = new Channels({ broker });
    await within(up, "the broker to come up");
    const [b] = setup().nodes as [NodeHandle];
    const channel = fresh("own-client");
    await b.call({ op: "tryJoin", channel, name: "m0" });
    const got: string[] = [];
    channels.join(channel, { send: (data) => void got.push(String(data)) });
    await channels.subscribed(channel);
    expect(await numsub(channel)).toBe(2);
    await channels.broadcast(channel, "with your client");
    await receivedAtLeast(b, "m0", 1);
    expect(await texts(b, "m0")).toEqual(["with your client"]);
    await b.call({ op: "broadcast", channel, data: "back" });
    await until(async () => got.length === 1, "the broadcast from b");
    await channels.close();
    expect(client.status).toBe("ready");
    expect([client.listenerCount("close"), client.listenerCount("ready")]).toEqual(listeners);
    expect(await client.ping()).toBe("PONG");
    expect(await numsub(channel)).toBe(1);
    client.disconnect();
  });

  it("past 65,536 channels an origin starts a channel's sequence again (a new epoch): memory stays bounded, and no false gap", async () => {
    const [a, b] = setup().nodes as [NodeHandle, NodeHandle];
    const channel = fresh("epochs");
    await b.call({ op: "tryJoin", channel, name: "m0" });
    const lostBefore = (await brokerStats(b)).lost;
    await a.call({ op: "broadcast", channel, data: "first" });
    await a.call({ op: "broadcast", channel, data: "second" });
    // 65,536 other channels, nobody in them: the origin forgets `channel`'s sequence
    const published = (await brokerStats(a)).published;
    await a.call({ op: "burst", channelList: Array.from({ length: 65_536 }, (_, i) => `${channel}-other-${i}`), count: 65_536 });
    // Redis has answered them all (otherwise the next one could be over maxPending, and unpublished)
    await until(async () => (await brokerStats(a)).published === published + 65_536, "Redis to answer the burst", 40_000);
    await a.call({ op: "broadcast", channel, data: "third" });
    await receivedAtLeast(b, "m0", 3, 40_000);
    expect(await texts(b, "m0")).toEqual(["first", "second", "third"]);
    expect((await brokerStats(b)).lost).toBe(lostBefore);
  }, 60_000);

  it("broadcasts to one channel in one turn leave as batches (a few PUBLISH), split in order on the other nodes; the origin drops its own", async () => {
    const [a, b] = setup().nodes as [NodeHandle, NodeHandle];
    const channel = fresh("batched");
    for (const node of [a, b]) await node.call({ op: "tryJoin", channel, name: "m0" });
    // a subscriber of our own counts the messages Redis carries on the channel
    const watcher = new Redis(server.path);
    let messages = 0;
    watcher.on("messageBuffer", () => void messages++);
    await watcher.subscribe(redisName(channel));
    const receivedBefore = (await brokerStats(a)).received;
    const lostBefore = (await brokerStats(b)).lost;
    const count = 2000;
    // 2,000 in one turn, 600 bytes each: batches of at most 64 KiB of envelopes, about 100 each
    await a.call({ op: "burst", channelList: [channel], count, pad: 600 });
    await receivedAtLeast(b, "m0", count, 20_000);
    expect((await texts(b, "m0")).map((text) => text.replace(/\.+$/, ""))).toEqual(
      Array.from({ length: count }, (_, i) => `${channel}:${i}`),
    );
    await until(async () => messages >= 2, "the batches to reach the watcher");
    expect(messages).toBeLessThanOrEqual(count / 50);
    expect((await brokerStats(a)).received).toBe(receivedBefore); // its own batches came back and were dropped as its echo
    expect((await brokerStats(b)).lost).toBe(lostBefore);
    watcher.disconnect();
  });

  it("a join made while the broker's connections are being opened waits for its subscription: tryJoin resolves true, and a broadcast made then arrives", async () => {
    const broker = new RedisBroker({ url: server.path, prefix: PREFIX });
    const channels = new Channels({ broker });
    const got: string[] = [];
    const channel = fresh("opening");
    expect(broker.stats().connected).toBe(false); // nothing is open yet
    expect(await channels.tryJoin(channel, { send: (data) => void got.push(String(data)) })).toBe(true);
    expect(await numsub(channel)).toBe(1);
    const [b] = setup().nodes as [NodeHandle];
    await b.call({ op: "broadcast", channel, data: "made after the join" });
    await until(async () => got.length === 1, "the broadcast from b");
    expect(got).toEqual(["made after the join"]);
    await channels.close();
  });

  it("fills a subscription's handle with the channel's entry and publishes by it; a slot holding anything else is looked past", async () => {
    setup(); // the shared server is up
    const make = (prefix: string): RedisBroker => new RedisBroker({ url: server.path, prefix });
    // `elsewhere` takes the same handle last, as a wrapper sending to two Redis setups would give it
    const [sender, receiver, elsewhere] = [make(PREFIX), make(PREFIX), make(`${PREFIX}-elsewhere`)];
    try {
      await within(
        Promise.all([sender, receiver, elsewhere].map((broker) => new Promise((resolve) => broker.once("up", resolve)))),
        "the brokers up",
      );
      const got: string[] = [];
      sender.start(() => undefined);
      elsewhere.start(() => undefined);
      receiver.start(
        (envelope, channel, handle) => void got.push(`${String(channel)} ${envelope.toString()} ${handle === undefined ? "-" : "h"}`),
      );
      const [room, other] = [fresh("slot-room"), fresh("slot-other")];
      const handles = {
        room: { broker: undefined as unknown },
        other: { broker: undefined as unknown },
        shared: { broker: undefined as unknown },
      };
      expect(await within(receiver.subscribe(room, { broker: undefined }), "the receiver's subscription")).toBe(true);
      expect(await within(sender.subscribe(room, handles.room), "the sender's subscription")).toBe(true);
      expect(await within(sender.subscribe(other, handles.other), "the sender's other subscription")).toBe(true);
      expect(handles.room.broker).toMatchObject({ channel: room, name: redisName(room) });
      expect(await within(sender.subscribe(room, handles.shared), "a subscription on the shared handle")).toBe(true);
      expect(await within(elsewhere.subscribe(room, handles.shared), "the other broker's, on the same handle")).toBe(true);
      // one publish a turn: a turn's publishes to one channel would leave as one batch
      const sends: [string, { broker: unknown } | undefined][] = [
        ["by its handle", handles.room],
        ["by another channel's", handles.other],
        ["by another broker's entry", handles.shared],
        ["by a null slot", { broker: null }],
        ["by none", undefined],
      ];
      for (const [i, [text, handle]] of sends.entries()) {
        sender.publish(room, Buffer.from(text), handle);
        await until(async () => got.length === i + 1, `message ${i + 1} on the room`);
      }
      expect(got).toEqual(sends.map(([text]) => `${room} ${text} h`));
      expect(sender.stats()).toMatchObject({ published: sends.length, unpublished: 0 });
    } finally {
      await Promise.all([sender.close(), receiver.close(), elsewhere.close()]);
    }
  });

  it("a publish that cannot be sent is counted, never queued: ioredis's offline queue stays empty", async () => {
    const broker = new RedisBroker({ url: "/nonexistent/redis.sock", prefix: PREFIX, redis: { retryStrategy: () => null } });
    broker.on("down", () => undefined);
    const channels = new Channels({ broker });
    for (let i = 0; i < 1000; i++) await channels.broadcast("nowhere", "x");
    expect(channels.stats().broker).toMatchObject({ connected: false, published: 0, unpublished: 1000 });
    await channels.close();
  });
});
