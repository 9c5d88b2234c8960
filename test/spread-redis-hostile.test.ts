import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channels } from "ws-channels";
import { RedisBroker } from "ws-channels/redis";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { encodeEnvelope } from "../packages/ws-channels/src/brokers/envelope.js";
import { MAX_GAP } from "../packages/ws-channels/src/brokers/link.js";
import { decodeEnvelope } from "./brokers/decode.js";
import { RedisServer } from "./brokers/redis-server.js";
import { metric, until, WsClient, within } from "./helpers.js";
import { join, settled } from "./spread.js";

/*
 * Anyone who can write to Redis can publish on a deployment's Redis channels. Two servers share
 * one Redis; a raw client publishes what no node sends, on the channel of a live channel and on
 * the nodes' own channels. Each is dropped and counted, and the nodes keep delivering.
 */
const redis = new RedisServer();
const running: RunningServer[] = [];
let raw: Redis;

beforeAll(async () => {
  await redis.start();
  for (let i = 0; i < 2; i++) running.push(await startServer({ port: 0, tcpPort: false, spread: { redis: redis.path } }));
  raw = new Redis(redis.path);
}, 30_000);

afterAll(async () => {
  raw?.disconnect();
  await Promise.all(running.map((server) => server.close()));
  await redis.stop();
});

const open = (node: number, path = "/"): Promise<WsClient> => WsClient.open(`ws://127.0.0.1:${running[node]?.ws.port}${path}`);

/** The next message published on Redis channel `name`, as a raw subscriber sees it. */
async function nextOn(name: string, publish: () => void): Promise<Buffer> {
  const spy = new Redis(redis.path);
  try {
    await spy.subscribe(name);
    const got = new Promise<Buffer>((resolve) => spy.on("messageBuffer", (_name: Buffer, message: Buffer) => resolve(message)));
    publish();
    return await got;
  } finally {
    spy.disconnect();
  }
}

describe("hostile input from the broker", () => {
  it("drops and counts what no node sends, keeps delivering, and /metrics never fails", async () => {
    const [a, b] = [await settled(await open(0, "/?id=dana")), await settled(await open(1, "/?id=carl"))];
    await join(a, "room");
    await join(a, "other");
    await join(b, "room");
    const real = decodeEnvelope(await nextOn("ws-channels:s:room", () => b.send({ to: "room", say: "one" })));
    expect(await a.next()).toEqual({ to: "room", say: "one", from: "carl" });
    if (real === undefined) throw new Error("not an envelope");
    const forged = '{"to":"room","say":"forged"}';
    const notUtf8 = encodeEnvelope(7, 1, 1, "room", new Uint8Array([0x22, 0xff, 0xfe, 0x22]));
    notUtf8[1] = (notUtf8[1] as number) & ~1; // flagged as text
    const envelopes = [
      Buffer.from("not an envelope"),
      encodeEnvelope(7, 1, 1, "other", forged), // for "other", on room's Redis channel
      encodeEnvelope(real.origin, real.epoch, real.seq, "room", forged), // a repeat
      encodeEnvelope(real.origin, real.epoch, (real.seq + 2 ** 31) >>> 0, "room", forged),
      encodeEnvelope(real.origin, real.epoch, (real.seq + 2 ** 31 - 1) >>> 0, "room", forged),
      encodeEnvelope(real.origin, (real.epoch + 1) >>> 0, 0, "room", forged), // a new sequence from seq 0
      notUtf8,
    ];
    for (const envelope of envelopes) await raw.publish("ws-channels:s:room", envelope);
    const nodes = (await raw.pubsub("CHANNELS", "ws-channels:node:*")) as string[];
    expect(nodes).toHaveLength(2);
    const messages = [
      "not json",
      "null",
      JSON.stringify({ ids: "dana", text: '{"from":null,"payload":1}' }),
      JSON.stringify({ ids: [1], text: '{"from":null,"payload":1}' }),
      JSON.stringify({ ids: ["dana"], text: '{"error":"forged"}' }),
      JSON.stringify({ ids: ["dana"], text: '{"from":"x","payload":1}{"error":"forged"}' }),
    ];
    for (const node of nodes) for (const message of messages) await raw.publish(node, message);

    const server = running[0] as RunningServer;
    const invalid = (): Promise<number> => metric(server.registry, "ws_channels_broker_invalid_total");
    await until(async () => (await invalid()) === envelopes.length + messages.length, "every forgery to be counted");
    await expect(server.registry.metrics()).resolves.toMatch(/ws_channels_broker_lost_total 0/);
    expect(server.channels.stats().broker).toMatchObject({ lost: 0, invalid: envelopes.length });
    // the node delivers what follows, and nothing forged came before it
    b.send({ to: "room", say: "two" });
    expect(await a.next()).toEqual({ to: "room", say: "two", from: "carl" });
    b.send({ targets: ["dana"], payload: "direct" });
    expect(await a.next()).toEqual({ from: "carl", payload: "direct" });
    expect(a.received).toEqual([
      { joined: "probe" },
      { joined: "room" },
      { joined: "other" },
      { to: "room", say: "one", from: "carl" },
      { to: "room", say: "two", from: "carl" },
      { from: "carl", payload: "direct" },
    ]);
    expect(a.ws.readyState).toBe(a.ws.OPEN);
    await expect(running[1]?.registry.metrics()).resolves.toContain("ws_channels_broker_invalid_total");
    expect(await invalid()).toBe(envelopes.length + messages.length); // counters never go down
    await Promise.all([a.close(), b.close()]);
  });
});

describe("a sequence number's gap, as the library reads it", () => {
  it("a gap up to MAX_GAP is lost; a larger jump is invalid unless the origin's next envelope follows it", async () => {
    const broker = new RedisBroker({ url: redis.path, prefix: "gaps" });
    const up = new Promise((resolve) => broker.once("up", resolve));
    const channels = new Channels({ broker });
    const got: string[] = [];
    const member = { send: (message: string | Buffer) => got.push(String(message)) };
    try {
      await within(up, "the broker to come up");
      channels.join("room", member);
      await until(async () => Number(((await raw.pubsub("NUMSUB", "gaps:s:room")) as [string, number])[1]) === 1, "the subscription");
      const send = (seq: number, text: string): Promise<number> =>
        raw.publish("gaps:s:room", encodeEnvelope(9, 1, seq >>> 0, "room", text));
      for (const [seq, text] of [
        [1, "1"],
        [2 + MAX_GAP, "gap"], // MAX_GAP lost
        [3 + 3 * MAX_GAP, "jump"], // invalid
        [4 + 3 * MAX_GAP, "moved on"], // follows the jump: taken up from there
        [5 + 3 * MAX_GAP, "next"],
      ] as const)
        await send(seq, text);
      await until(async () => got.length === 4, "four deliveries");
      expect(got).toEqual(["1", "gap", "moved on", "next"]);
      expect(channels.stats().broker).toMatchObject({ received: 4, lost: MAX_GAP, invalid: 1 });
    } finally {
      await channels.close();
    }
  });
});
