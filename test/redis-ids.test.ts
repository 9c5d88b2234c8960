import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisConnections } from "ws-channels/redis";
import { RedisIds } from "../packages/server/src/adapters/redis-ids.js";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { RedisServer } from "./brokers/redis-server.js";
import { WsClient } from "./helpers.js";

/* Id claims in a real redis-server: two nodes' RedisIds, and a server whose Redis fails a claim. */
const redis = new RedisServer();
let admin: Redis;
const connections: RedisConnections[] = [];
const made: RedisIds[] = [];

/** A node's claims on connections of its own, with the prefix "ids", ready to use. */
async function node(address: string): Promise<{ ids: RedisIds; commands: Redis }> {
  const own = new RedisConnections({ url: redis.path, prefix: "ids" });
  connections.push(own);
  const ids = new RedisIds(own, address);
  made.push(ids);
  if (own.commands.status !== "ready") await new Promise((resolve) => own.commands.once("ready", resolve));
  return { ids, commands: own.commands };
}

const holders = async (id: string): Promise<string[]> => admin.zrange(`ids:id:${id}`, "0", "-1");

beforeAll(async () => {
  await redis.start();
  admin = new Redis(redis.path);
}, 30_000);

afterAll(async () => {
  for (const ids of made) await ids.close();
  for (const own of connections) await own.close();
  admin?.disconnect();
  await redis.stop();
});

describe("id claims on Redis", () => {
  it("a refused claim removes only its own claim: release and reclaim racing it keep the new claim", async () => {
    const [a, b] = [await node("a"), await node("b")];
    expect(await b.ids.claim("dana", true)).toBe(true);
    // a's first claim is refused (b holds dana); before its answer, a releases, b's release lands
    // (on a's connection, so that it reaches Redis between a's commands), and a claims again
    const first = a.ids.claim("dana", true);
    a.ids.release("dana");
    const released = a.commands.zrem("ids:id:dana", "b");
    const second = a.ids.claim("dana", true);
    expect([await first, await released, await second]).toEqual([false, 1, true]);
    expect(await holders("dana")).toEqual(["a"]);
    // a still knows it holds dana: its release frees it, and b can take it
    a.ids.release("dana");
    await a.commands.ping(); // the release went before this
    expect(await holders("dana")).toEqual([]);
    expect(await b.ids.claim("dana", true)).toBe(true);
    b.ids.release("dana");
  });

  it("more than 500 held ids refresh in batches; ids released meanwhile are not claimed again; refreshes never overlap", async () => {
    const { ids, commands } = await node("many");
    const all = Array.from({ length: 1300 }, (_, i) => `user${i}`);
    const granted = await Promise.all(all.map((id) => ids.claim(id, false)));
    expect(granted.every(Boolean)).toBe(true);
    const refreshing = ids.refresh();
    expect(ids.refresh()).toBe(refreshing); // asked again while it runs: after it, not alongside
    // released while the first batch of 500 is on its way: these are in the later batches
    const released = all.filter((_, i) => i >= 500 && i % 3 === 0);
    for (const id of released) ids.release(id);
    await refreshing;
    await commands.ping(); // every release went before this
    const held = await Promise.all(all.map(async (id) => (await holders(id)).includes("many")));
    expect(all.filter((_, i) => !held[i])).toEqual(released);
    await ids.close();
    expect((await Promise.all(all.map(holders))).flat()).toEqual([]);
  });

  it("a key that is not a claim (anyone can write to Redis) refuses its id instead of failing every claim", async () => {
    const { ids } = await node("c");
    await admin.set("ids:id:mallory", "not a sorted set");
    expect(await ids.claim("mallory", true)).toBe(false);
    expect(await ids.claim("erin", true)).toBe(true);
    expect(await ids.locate(["mallory", "erin"])).toEqual(new Map());
  });

  it("a Redis error during a claim is logged and the connection closed 1011, never let in", async () => {
    const lines: string[] = [];
    const server: RunningServer = await startServer({
      port: 0,
      tcpPort: false,
      spread: { redis: redis.path },
      logger: pino({ level: "warn" }, { write: (line: string) => lines.push(line) }),
    });
    try {
      // Redis answers the claim's script with an error (NOPERM) while every other command works
      await admin.call("ACL", "SETUSER", "default", "-eval", "-evalsha");
      const client = await WsClient.open(`ws://127.0.0.1:${server.ws.port}/?id=frank`);
      client.send({ join: "room" });
      expect(await client.closedBy()).toEqual({ code: 1011, reason: "internal error" });
      expect(client.received).toEqual([]);
      expect(lines.some((line) => line.includes("id claim failed") && line.includes("NOPERM"))).toBe(true);
    } finally {
      await admin.call("ACL", "SETUSER", "default", "+eval", "+evalsha");
      await server.close();
    }
  });
});
