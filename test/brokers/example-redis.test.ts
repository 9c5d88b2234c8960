import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Channels } from "ws-channels";
import { RedisBroker } from "ws-channels/redis";
import { eventually, WsClient, within } from "../helpers.js";
import { exited, spawnProject, stopGroups, waitFor } from "../processes.js";
import { RedisServer } from "./redis-server.js";

const server = new RedisServer();
await server.start();
process.env.PORT = "0";
process.env.REDIS_URL = server.path;
const { channels, wss } = await import("../../examples/redis.js");
await within(once(wss, "listening"), "the example to listen");
const { port } = wss.address() as { port: number };
// a second node: another process would do the same
const broker = new RedisBroker({ url: server.path });
const other = new Channels({ broker });
afterAll(async () => {
  await new Promise((resolve) => wss.close(resolve));
  await channels.close();
  await other.close();
  await server.stop();
});

describe("the Redis example (examples/redis.ts)", () => {
  it("a client that joined gets a broadcast made on another node, and its say reaches that node", async () => {
    const client = await WsClient.open(`ws://127.0.0.1:${port}/`);
    client.send({ op: "join", room: "lobby" });
    expect(await client.next()).toEqual({ joined: "lobby" });
    await other.broadcast("lobby", JSON.stringify({ from: "the other node" }));
    expect(await client.next()).toEqual({ from: "the other node" });
    const got: string[] = [];
    other.join("lobby", { send: (data) => void got.push(String(data)) });
    await other.subscribed("lobby");
    client.send({ op: "say", room: "lobby", text: "hi" });
    expect(await client.next()).toEqual({ room: "lobby", text: "hi" });
    await eventually(() => got.length === 1, "the other node's member to get the say");
    expect(JSON.parse(got[0] as string)).toEqual({ room: "lobby", text: "hi" });
    await client.close();
  });
});

const groups: ChildProcess[] = [];
afterEach(() => stopGroups(groups));

describe("npm run example:redis", () => {
  it("starts the example as a process of its own, which hears a broadcast made on another node", async () => {
    // the script's pre-step, without its rebuild of dist/ (which other test files are reading)
    const tsc = spawnProject(groups, join("node_modules", ".bin", "tsc"), ["-p", "examples"]);
    expect(await exited(tsc.child, 60_000), tsc.output()).toEqual([0, null]);
    const started = spawnProject(groups, "npm", ["run", "example:redis", "--ignore-scripts"], { PORT: "0", REDIS_URL: server.path }, true);
    const [, port] = await waitFor(started, /chat on ws:\/\/127\.0\.0\.1:(\d+)/, "the Redis example to listen", 10_000);
    const client = await WsClient.open(`ws://127.0.0.1:${port}/`);
    client.send({ op: "join", room: "hall" });
    expect(await client.next()).toEqual({ joined: "hall" });
    await other.broadcast("hall", JSON.stringify({ from: "the other node" }));
    expect(await client.next()).toEqual({ from: "the other node" });
    await client.close();
  }, 60_000);
});
