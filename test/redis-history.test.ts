import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { RedisServer } from "./brokers/redis-server.js";
import { eventually, WsClient, within } from "./helpers.js";

type Delivery = { to: string; say: unknown; from?: string; offset: number; epoch: string };
type Joined = { joined: string; epoch: string; offset: number; recovered?: boolean; missed?: { say: unknown; offset: number }[] };

const redis = new RedisServer();
const servers: RunningServer[] = [];
const clients: WsClient[] = [];

beforeAll(() => redis.start(), 10_000);
afterAll(() => redis.stop());
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Two servers on the shared Redis, history on. */
async function twoServers(historySize = 100, recoverMax = historySize): Promise<void> {
  for (let i = 0; i < 2; i++)
    servers.push(
      await startServer({ port: 0, tcpPort: false, maxMessagesPerSecond: 100_000, historySize, recoverMax, spread: { redis: redis.path } }),
    );
}

async function client(node: 0 | 1, id?: string): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${servers[node]?.ws.port}/${id === undefined ? "" : `?id=${id}`}`);
  clients.push(c);
  return c;
}

async function join(c: WsClient, channel: string, recover?: { offset: number; epoch: string }): Promise<Joined> {
  c.send(recover === undefined ? { join: channel } : { join: channel, recover });
  return (await c.next()) as Joined;
}

/** Says `first`..`last` (as `say`) to `channel` from `c`, a member, and waits for its own copy of the last. */
async function say(c: WsClient, channel: string, first: number, last: number): Promise<void> {
  for (let i = first; i <= last; i++) c.send({ say: i, to: channel });
  while (((await c.next()) as Delivery).say !== last);
}

async function flushAll(): Promise<void> {
  const admin = new Redis(redis.path);
  await admin.flushall();
  admin.disconnect();
}

describe("history on two servers with --redis", () => {
  it("a client back on the other server recovers exactly what it missed while a publisher keeps going", async () => {
    await twoServers();
    const publisher = await client(0, "pub");
    const joined = await join(publisher, "room");
    expect(joined).toEqual({ joined: "room", epoch: expect.any(String), offset: 0 });
    const blinker = await client(0);
    expect(await join(blinker, "room")).toEqual({ joined: "room", epoch: joined.epoch, offset: 0 });
    await say(publisher, "room", 1, 20);
    await eventually(() => blinker.received.length === 21, "the blinker to get 20 says");
    const seen = blinker.received.at(-1) as Delivery;
    expect(seen).toEqual({ to: "room", say: 20, from: "pub", offset: 20, epoch: joined.epoch });
    await blinker.close();
    // the publisher keeps going while the client comes back on the other server
    const publishing = (async () => {
      for (let i = 21; i <= 200; i += 10) await say(publisher, "room", i, i + 9);
    })();
    const back = await client(1);
    const recovered = await join(back, "room", { offset: seen.offset, epoch: seen.epoch });
    await publishing;
    expect(recovered).toMatchObject({ joined: "room", recovered: true, epoch: joined.epoch });
    await eventually(() => (back.received.at(-1) as Delivery).offset === 200, "the last say on the other server");
    const offsets = [...(recovered.missed ?? []).map((m) => m.offset), ...back.received.slice(1).map((m) => (m as Delivery).offset)];
    expect(offsets).toEqual(Array.from({ length: 180 }, (_, i) => i + 21));
    expect(recovered.missed?.[0]).toEqual({ say: 21, from: "pub", offset: 21 });
    // a client that never received a say recovers from its joined position
    const again = await client(1);
    expect(await join(again, "room", { offset: 200, epoch: joined.epoch })).toEqual({
      joined: "room",
      recovered: true,
      epoch: joined.epoch,
      offset: 200,
      missed: [],
    });
  });

  it("a FLUSHALL starts a new epoch: recovered false, never a wrong offset", async () => {
    await twoServers();
    const a = await client(0);
    const { epoch } = await join(a, "flushed");
    await say(a, "flushed", 1, 5);
    await flushAll();
    const b = await client(1);
    const got = await join(b, "flushed", { offset: 3, epoch });
    expect(got).toEqual({ joined: "flushed", recovered: false, epoch: expect.any(String), offset: 0 });
    expect(got.epoch).not.toBe(epoch);
    a.send({ say: "after", to: "flushed" });
    expect(await b.next()).toEqual({ to: "flushed", say: "after", offset: 1, epoch: got.epoch });
  });

  it("history trimmed past the position, or more than recoverMax missed: recovered false", async () => {
    await twoServers(10, 1000);
    const a = await client(0);
    const { epoch } = await join(a, "trimmed");
    for (let i = 1; i <= 300; i += 50) await say(a, "trimmed", i, i + 49);
    const b = await client(1);
    expect(await join(b, "trimmed", { offset: 0, epoch })).toEqual({ joined: "trimmed", recovered: false, epoch, offset: 300 });
    const c = await client(1);
    const recent = await join(c, "trimmed", { offset: 295, epoch });
    expect(recent.missed?.map((m) => m.offset)).toEqual([296, 297, 298, 299, 300]);
  });

  it("Redis killed and restarted: members get resync, then recover (a new epoch: recovered false)", async () => {
    await twoServers();
    const a = await client(0);
    const b = await client(1);
    const { epoch } = await join(a, "outage");
    await join(b, "outage");
    await say(a, "outage", 1, 3);
    await eventually(() => b.received.length === 4, "b to get 3 says");
    await redis.kill();
    await redis.start();
    const resync = { resync: "outage" };
    await eventually(() => b.received.some((m) => JSON.stringify(m) === JSON.stringify(resync)), "resync on node 1", 10_000);
    await eventually(() => a.received.some((m) => JSON.stringify(m) === JSON.stringify(resync)), "resync on node 0", 10_000);
    const got = (await within(
      (async () => {
        b.send({ join: "outage", recover: { offset: 3, epoch } });
        for (;;) {
          const m = (await b.next()) as Joined;
          if (m.joined === "outage") return m;
        }
      })(),
      "the recovery",
    )) as Joined;
    expect(got).toMatchObject({ joined: "outage", recovered: false, offset: 0 });
    expect(got.epoch).not.toBe(epoch);
  });

  it("a join while Redis is down answers an epoch no recovery matches; resync once Redis is back", async () => {
    await twoServers();
    const a = await client(0);
    await redis.kill();
    await eventually(() => servers[0]?.channels.stats().broker?.connected === false, "the broker to go down", 10_000);
    expect(await join(a, "dark")).toEqual({ joined: "dark", epoch: "", offset: 0 });
    await redis.start();
    await eventually(() => a.received.some((m) => (m as { resync?: unknown }).resync === "dark"), "resync", 10_000);
    const got = (await within(
      (async () => {
        a.send({ join: "dark", recover: { offset: 0, epoch: "" } });
        for (;;) {
          const m = (await a.next()) as Joined;
          if (m.joined === "dark") return m;
        }
      })(),
      "the recovery",
    )) as Joined;
    expect(got).toEqual({ joined: "dark", recovered: false, epoch: expect.stringMatching(/^[0-9a-f]{16}$/), offset: 0 });
  });
});
