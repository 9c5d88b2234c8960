import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Client } from "ws-channels/client";
import { type RunningServer, type ServerOptions, startServer } from "../packages/server/src/server.js";
import { RedisServer } from "./brokers/redis-server.js";
import { eventually, metric, until, WsClient } from "./helpers.js";
import { historyConformance, join, range, rejoin, say } from "./history-conformance.js";
import { Member } from "./history-member.js";

const redis = new RedisServer();
const servers: RunningServer[] = [];
const clients: WsClient[] = [];

beforeAll(() => redis.start(), 10_000);
afterAll(() => redis.stop());

/** Two servers on the Redis at `path`, history on. */
async function twoServers(options: ServerOptions, path = redis.path): Promise<void> {
  for (let i = 0; i < 2; i++)
    servers.push(await startServer({ port: 0, tcpPort: false, maxMessagesPerSecond: 100_000, ...options, spread: { redis: path } }));
}

async function client(node: 0 | 1, id?: string): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${servers[node]?.ws.port}/${id === undefined ? "" : `?id=${id}`}`);
  clients.push(c);
  return c;
}

/** Runs `command` on the Redis at `path` on a connection of its own. */
async function admin<T>(command: (r: Redis) => Promise<T>, path = redis.path): Promise<T> {
  const r = new Redis(path);
  r.on("error", () => undefined); // reported by the command's rejection
  try {
    return await command(r);
  } finally {
    r.disconnect();
  }
}

historyConformance("two servers on Redis", {
  start: (settings) => twoServers(settings),
  client,
  async newEpoch() {
    await admin((r) => r.flushall()); // the streams and meta hashes are gone: offsets restart
  },
  dropped: async () => servers.reduce((sum, s) => sum + s.channels.stats().dropped, 0),
  async stop() {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await admin((r) => r.flushall()); // the next case starts from empty channels
  },
});

describe("history on two servers with --redis: Redis faults", () => {
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await admin((r) => r.flushall());
  });

  it("Redis killed and restarted without persistence: members get resync, then recover (a new epoch: recovered false)", async () => {
    await twoServers({ historySize: 100 });
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
    const got = await rejoin(b, "outage", { offset: 3, epoch });
    expect(got).toMatchObject({ joined: "outage", recovered: false, offset: 0 });
    expect(got.epoch).not.toBe(epoch);
  });

  it("a join while Redis is down answers an epoch no recovery matches; resync once Redis is back", async () => {
    await twoServers({ historySize: 100 });
    const a = await client(0);
    await redis.kill();
    await eventually(() => servers[0]?.channels.stats().broker?.connected === false, "the broker to go down", 10_000);
    expect(await join(a, "dark")).toEqual({ joined: "dark", epoch: "", offset: 0 });
    await redis.start();
    await eventually(() => a.received.some((m) => (m as { resync?: unknown }).resync === "dark"), "resync", 10_000);
    const got = await rejoin(a, "dark", { offset: 0, epoch: "" });
    expect(got).toEqual({ joined: "dark", recovered: false, epoch: expect.stringMatching(/^[0-9a-f]{16}$/), offset: 0 });
  });

  it("Redis SIGKILLed during traffic, with appendfsync always: resync, and every member ends with exactly 1..TOP", async () => {
    const durable = new RedisServer({ persistent: true });
    await durable.start();
    try {
      await twoServers({ historySize: 2000 }, durable.path);
      const members = await Promise.all([0, 0, 1, 1].map(async (node) => new Member(await client(node as 0 | 1), "traffic")));
      for (const m of members) m.join();
      await eventually(() => members.every((m) => m.at(0)), "every member's position");
      const publisher = await client(0, "pub");
      await join(publisher, "traffic");
      // the publisher says 1, 2, 3... each once the server has handled the one before (a ping after
      // each), a few milliseconds apart, until told to stop
      let said = 0;
      let stop = false;
      const publishing = (async () => {
        while (!stop && said < 3000) {
          said++;
          publisher.send({ say: said, to: "traffic" });
          publisher.send({ ping: said });
          while (((await publisher.next()) as { pong?: number }).pong !== said);
          await new Promise((resolve) => setTimeout(resolve, 3)); // a pace for the load, not a wait for an event
        }
      })();
      await eventually(() => members.every((m) => (m.position?.offset ?? 0) >= 30), "30 says to every member", 10_000);
      await durable.kill();
      const killedAt = said;
      await eventually(
        () => servers.every((s) => s.channels.stats().broker?.connected === false),
        "both servers to see Redis gone",
        10_000,
      );
      await eventually(() => said >= killedAt + 20, "says while Redis is down", 10_000);
      await durable.start();
      await eventually(() => members.every((m) => m.resyncs > 0), "resync on both servers", 15_000);
      const restartedAt = said;
      const keptBefore = Number(await admin((r) => r.hget("ws-channels:history-meta:traffic", "top"), durable.path));
      await eventually(() => said >= restartedAt + 30, "says once Redis is back", 10_000);
      stop = true;
      await publishing;
      // the last say Redis kept: every member recovers up to it
      const top = Number(await admin((r) => r.hget("ws-channels:history-meta:traffic", "top"), durable.path));
      await eventually(() => members.every((m) => m.at(top)), `every member at ${top}`, 10_000);
      for (const m of members) {
        expect(m.refused).toEqual([]);
        expect(m.stale).toBe(0);
        expect(m.taken).toEqual(range(0, top));
      }
      // Redis kept says in the order they were said, each once; every say it did not keep is counted as lost
      const entries = await admin((r) => r.xrange("ws-channels:history-stream:traffic", "-", "+"), durable.path);
      const kept = entries.map(([, fields]) => (JSON.parse(`{${fields[1]}}`) as { say: number }).say);
      expect(entries.map(([id]) => id)).toEqual(range(0, top).map((n) => `0-${n}`));
      expect(kept).toEqual([...kept].sort((x, y) => x - y));
      expect(kept.length).toBeLessThan(said);
      expect(top).toBeGreaterThan(keptBefore); // numbered on from what Redis had: the same epoch
      const lost = await metric(servers[0]?.registry as RunningServer["registry"], "ws_channels_broker_lost_total");
      expect(lost).toBeGreaterThanOrEqual(said - kept.length);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(servers.splice(0).map((s) => s.close()));
      await durable.stop();
    }
  }, 60_000);

  it("ws-channels/client: a rejoin answered with no position while Redis is down keeps the room's own, recovered on resync", async () => {
    const durable = new RedisServer({ persistent: true });
    await durable.start();
    let reader: Client | undefined;
    try {
      await twoServers({ historySize: 100 }, durable.path);
      reader = new Client(`ws://127.0.0.1:${servers[0]?.ws.port}/`, { WebSocket });
      const room = reader.join("kept");
      const joins: { recovered: boolean; missed: (number | undefined)[] }[] = [];
      const offsets: (number | undefined)[] = [];
      room.on("joined", ({ recovered, missed }) => joins.push({ recovered, missed: missed.map((m) => m.offset) }));
      room.on("message", (m) => offsets.push(m.offset));
      await eventually(() => joins.length === 1, "the first join");
      const sayer = await client(1, "bob");
      await join(sayer, "kept");
      await say(sayer, "kept", 1, 3);
      await eventually(() => offsets.length === 3, "3 says to the reader");
      await durable.kill();
      await eventually(() => servers[0]?.channels.stats().broker?.connected === false, "server 0 to see Redis gone", 10_000);
      const changes: string[] = [];
      const unobserve = servers[0]?.channels.observe("kept", (_channel, _member, _meta, cause) => changes.push(cause));
      reader.drop(); // it rejoins with recover from 3; the server cannot read Redis: "epoch": ""
      await eventually(() => changes.at(-1) === "join", "the rejoin", 10_000);
      unobserve?.();
      await durable.start();
      await eventually(() => joins.length === 2, "the recovery after resync", 15_000);
      await eventually(() => servers.every((s) => s.channels.stats().broker?.connected === true), "the sayer's server back", 10_000);
      sayer.send({ say: 4, to: "kept" });
      await eventually(() => offsets.length === 4, "the next say");
      expect(joins).toEqual([
        { recovered: false, missed: [] },
        { recovered: true, missed: [] },
      ]);
      expect(offsets).toEqual([1, 2, 3, 4]);
    } finally {
      reader?.close();
      await Promise.all(clients.splice(0).map((x) => x.close()));
      await Promise.all(servers.splice(0).map((s) => s.close()));
      await durable.stop();
    }
  }, 40_000);

  it("one server's subscriber dropped while Redis stays up: its members alone get resync, and recover exactly what it missed", async () => {
    await twoServers({ historySize: 1000 });
    const members = await Promise.all([0, 0, 1, 1].map(async (node) => new Member(await client(node as 0 | 1), "blink")));
    for (const m of members) m.join();
    await eventually(() => members.every((m) => m.at(0)), "every member's position");
    const publisher = await client(0, "pub");
    await join(publisher, "blink");
    await say(publisher, "blink", 1, 20);
    await eventually(() => members.every((m) => m.at(20)), "20 says to every member");
    // Redis refuses new connections while the subscriber is gone, so the says below surely miss it
    const r = new Redis(redis.path);
    r.on("error", () => undefined);
    let affected = -1;
    try {
      const list = (await r.call("CLIENT", "LIST", "TYPE", "pubsub")) as string;
      // two subscribers per server (the broker's, and the one of history, presence and node
      // messages); server 0 started, with both, before server 1: the older half are its own
      const ids = [...list.matchAll(/^id=(\d+) /gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
      expect(ids.length).toBe(4);
      const connected = ((await r.call("CLIENT", "LIST")) as string).trim().split("\n").length;
      await r.config("SET", "maxclients", String(connected - 2)); // all there are, but the two leaving
      for (const id of ids.slice(0, 2)) await r.client("KILL", "ID", String(id));
      await eventually(() => servers[0]?.channels.stats().broker?.connected === false, "server 0 to lose its subscribers");
      affected = 0;
      for (let i = 21; i <= 50; i++) publisher.send({ say: i, to: "blink" });
      await until(async () => Number(await r.hget("ws-channels:history-meta:blink", "top")) === 50, "Redis to keep 21..50");
    } finally {
      await r.config("SET", "maxclients", "10000");
      r.disconnect();
    }
    expect(affected).toBeGreaterThanOrEqual(0);
    const onAffected = (i: number): boolean => (i < 2 ? 0 : 1) === affected;
    await eventually(() => members.every((m) => m.at(50)), "every member at 50", 10_000);
    await say(publisher, "blink", 51, 60);
    await eventually(() => members.every((m) => m.at(60)), "every member at 60", 10_000);
    for (const [i, m] of members.entries()) {
      expect(m.taken).toEqual(range(0, 60));
      expect(m.refused).toEqual([]);
      expect(m.stale).toBe(0);
      expect(m.resyncs > 0).toBe(onAffected(i));
      if (onAffected(i)) {
        expect(m.live.filter((offset) => offset > 20 && offset <= 50)).toEqual([]); // live, it missed them all
        expect(m.recovered).toEqual(range(20, 50)); // and recovered exactly those
      } else expect(m.recovered).toEqual([]);
    }
  }, 30_000);
});
