import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { RedisServer } from "./brokers/redis-server.js";
import { WsClient } from "./helpers.js";
import { killAll, serverPorts, spawnProject, waitFor } from "./processes.js";
import { join, settled } from "./spread.js";

const redis = new RedisServer();
const children: ChildProcess[] = [];
const running: RunningServer[] = [];
/** WebSocket ports: `one` and `cli` share the prefix "one" (`cli` through --redis-prefix); `two` has "two". */
const ports = { one: 0, two: 0, cli: 0 };

beforeAll(async () => {
  await redis.start();
  for (const prefix of ["one", "two"] as const) {
    const server = await startServer({ port: 0, tcpPort: false, spread: { redis: redis.path, prefix } });
    running.push(server);
    ports[prefix] = server.ws.port;
  }
  const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--redis", redis.path, "--redis-prefix", "one"];
  const cli = spawnProject(children, process.execPath, args);
  ports.cli = (await serverPorts(cli, 10_000)).ws;
  await waitFor(cli, /broker up/, "the broker to come up");
}, 30_000);

afterAll(async () => {
  killAll(children);
  await Promise.all(running.map((server) => server.close()));
  await redis.stop();
});

const open = (node: keyof typeof ports, path = "/"): Promise<WsClient> => WsClient.open(`ws://127.0.0.1:${ports[node]}${path}`);

describe("--redis-prefix: deployments sharing one Redis", () => {
  it("a node's address is no channel: a server on Redis with no client has no channel and no membership", () => {
    const stats = running[0]?.channels.stats();
    expect([stats?.channels, stats?.memberships]).toEqual([0, 0]);
  });

  it("a say crosses between servers of one prefix, never to a server of another", async () => {
    const [one, two, cli] = [await open("one"), await open("two"), await open("cli")];
    for (const client of [one, two, cli]) await join(client, "room");
    const admin = new Redis(redis.path);
    try {
      const subscribers = async (name: string): Promise<number> => Number(((await admin.pubsub("NUMSUB", name)) as [string, number])[1]);
      expect([await subscribers("one:s:room"), await subscribers("two:s:room")]).toEqual([2, 1]);
      // four connections per server (ioredis's for commands and for its id and node channels, the broker's own publisher and subscriber), three servers, and this one
      const clients = String(await admin.call("CLIENT", "LIST"))
        .trim()
        .split("\n");
      expect(clients).toHaveLength(4 * 3 + 1);
    } finally {
      admin.disconnect();
    }
    one.send({ say: "from one", to: "room" });
    for (const client of [one, cli]) expect(await client.next()).toEqual({ to: "room", say: "from one" });
    two.send({ say: "from two", to: "room" });
    expect(await two.next()).toEqual({ to: "room", say: "from two" });
    // a marker from prefix "one", sent after "from two": nothing of "two" arrived before it
    cli.send({ say: "end", to: "room" });
    for (const client of [one, cli]) expect(await client.next()).toEqual({ to: "room", say: "end" });
    expect(two.received).toEqual([{ joined: "room" }, { to: "room", say: "from two" }]);
    await Promise.all([one, two, cli].map((client) => client.close()));
  });

  it("an id held under one prefix is refused under it and free under another; targets find it only under its own", async () => {
    const holder = await settled(await open("one", "/?id=dana"));
    const same = await open("cli", "/?id=dana");
    expect(await same.closedBy()).toEqual({ code: 1008, reason: "id in use" });
    const other = await settled(await open("two", "/?id=dana")); // another service's dana
    const [fromTwo, fromCli] = [await settled(await open("two", "/?id=tess")), await settled(await open("cli", "/?id=carl"))];
    fromCli.send({ targets: ["dana"], payload: "for dana of one" });
    expect(await holder.next()).toEqual({ from: "carl", payload: "for dana of one" });
    fromTwo.send({ targets: ["dana", "carl"], payload: "for dana of two" });
    expect(await other.next()).toEqual({ from: "tess", payload: "for dana of two" });
    // carl is connected under "one" only: for "two" he is nowhere
    expect(await fromTwo.next()).toEqual({ error: "unknown targets", targets: ["carl"] });
    expect(holder.received).toEqual([{ joined: "probe" }, { from: "carl", payload: "for dana of one" }]);
    // the node message came on the subscriber the broker shares: the broker left it alone
    expect(running[0]?.channels.stats().broker?.invalid).toBe(0);
    await Promise.all([holder, other, fromTwo, fromCli].map((client) => client.close()));
  });
});
