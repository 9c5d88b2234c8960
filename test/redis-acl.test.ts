import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channels } from "ws-channels";
import { RedisBroker, RedisConnections } from "ws-channels/redis";
import { RedisIds } from "../packages/server/src/adapters/redis-ids.js";
import { RedisServer } from "./brokers/redis-server.js";
import { until, within } from "./helpers.js";

/*
 * docs/deploying.md's Redis ACL, run as written against a real redis-server: a user limited to
 * the prefix's keys and channels can do everything a node does, and nothing outside the prefix.
 */
const redis = new RedisServer();
const PASSWORD = "a-long-random-password-for-the-test";
let admin: Redis;
const opened: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  await redis.start();
  admin = new Redis(redis.path);
  // the docs' command, word for word but the password
  await admin.call(
    "ACL",
    ..."SETUSER ws-channels on resetkeys ~ws-channels:* resetchannels &ws-channels:* +@all -@dangerous +info".split(" "),
    `>${PASSWORD}`,
  );
}, 30_000);

afterAll(async () => {
  for (const thing of opened.reverse()) await thing.close();
  admin?.disconnect();
  await redis.stop();
});

/** A node's connections as the ACL's user. */
function connect(): RedisConnections {
  const connections = new RedisConnections({ url: redis.path, redis: { username: "ws-channels", password: PASSWORD } });
  opened.push(connections);
  return connections;
}

describe("Redis ACL for ws-channels (docs/deploying.md)", () => {
  it("a user limited to the prefix's keys and channels broadcasts, claims and locates ids, and reaches nothing else", async () => {
    const nodes = [connect(), connect()].map((connections) => {
      const broker = new RedisBroker({ connections });
      const up = new Promise((resolve) => broker.once("up", resolve));
      const channels = new Channels({ broker });
      opened.push(channels);
      return { connections, channels, up };
    });
    for (const { up } of nodes) await within(up, "the broker to come up");
    const [one, two] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];
    const got: string[] = [];
    two.channels.join("room", { send: (message: string | Buffer) => got.push(String(message)) });
    await two.channels.subscribed("room");
    await one.channels.broadcast("room", "hello");
    await until(async () => got.length === 1, "the broadcast to cross");
    expect(got).toEqual(["hello"]);

    const [ids1, ids2] = [new RedisIds(one.connections, "n1"), new RedisIds(two.connections, "n2")];
    opened.push(ids1, ids2);
    expect(await ids1.claim("dana", true)).toBe(true);
    expect(await ids2.claim("dana", true)).toBe(false);
    expect(await ids2.locate(["dana"])).toEqual(new Map([["dana", ["n1"]]]));

    const user = one.connections.commands;
    await expect(user.set("other:key", "x")).rejects.toThrow(/NOPERM/);
    await expect(user.publish("other:channel", "x")).rejects.toThrow(/NOPERM/);
    await expect(user.flushall()).rejects.toThrow(/NOPERM/);
  });
});
