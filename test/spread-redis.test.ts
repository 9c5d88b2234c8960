import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisServer } from "./brokers/redis-server.js";
import { eventually, TcpClient, WsClient, within } from "./helpers.js";
import { exited, killAll, type Spawned, serverPorts, spawnProject, waitFor } from "./processes.js";
import { join, openWhenFree, settled, spreadsOverNodes, type TwoNodes } from "./spread.js";

const redis = new RedisServer();
const children: ChildProcess[] = [];
interface Server {
  spawned: Spawned;
  ports: { ws: number; tcp: number };
  /** The admin listener's port. */
  admin: number;
}
const servers: Server[] = [];

/** A server on the shared Redis, its lines as JSON; resolves once it serves with every node. */
async function server(): Promise<Server> {
  const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--redis", redis.path, "--admin-port", "0"];
  const spawned = spawnProject(children, process.execPath, args);
  const ports = await serverPorts(spawned, 10_000);
  const [, admin] = await waitFor(
    spawned,
    /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/,
    "the admin line",
  );
  await waitFor(spawned, /broker up/, "the broker to come up");
  return { spawned, ports, admin: Number(admin) };
}

const nodes: TwoNodes = {
  ws: (node, path = "/") => WsClient.open(`ws://127.0.0.1:${servers[node]?.ports.ws}${path}`),
  tcp: (node) => TcpClient.open(servers[node]?.ports.tcp as number),
  race: (node, path) => nodes.ws(node, path),
};

beforeAll(async () => {
  await redis.start();
  servers.push(await server(), await server());
}, 30_000);

afterAll(async () => {
  killAll(children);
  await redis.stop();
});

spreadsOverNodes("two servers with --redis", () => nodes);

/** One series of node `node`'s /metrics. */
async function metric(node: 0 | 1, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${servers[node]?.admin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
}

const said = (client: WsClient, channel: string): boolean =>
  client.received.some((m) => typeof m === "object" && m !== null && (m as { to?: unknown }).to === channel);

describe("two servers with --redis: faults", () => {
  it("Redis killed during traffic: both keep serving their own clients; restarted, cross-node delivery resumes within 5 s", async () => {
    const [a, b] = [await settled(await nodes.ws(0, "/?id=ann")), await settled(await nodes.ws(1, "/?id=ben"))];
    const a2 = await settled(await nodes.ws(0, "/?id=amy"));
    for (const client of [a, a2, b]) await join(client, "outage");
    await redis.kill();
    for (const { spawned } of servers) await waitFor(spawned, /broker down/, "the broker down line");
    // each node serves its own: join answered, say among local members, targets between local ids
    await join(a, "joined-in-outage");
    expect(await metric(0, "ws_channels_broker_up")).toBe(0);
    const lostBefore = await metric(0, "ws_channels_broker_lost_total");
    a.send({ say: "local", to: "outage" });
    expect(await a.next()).toEqual({ to: "outage", say: "local", from: "ann" });
    expect(await a2.next()).toEqual({ to: "outage", say: "local", from: "ann" });
    // the say could not reach node 1: counted, never silent
    expect(await metric(0, "ws_channels_broker_lost_total")).toBeGreaterThan(lostBefore);
    a.send({ targets: ["amy"], payload: "still local" });
    expect(await a2.next()).toEqual({ from: "ann", payload: "still local" });
    await redis.start();
    const back = Date.now();
    // within 5 s of Redis's return, a say from node 0 reaches a member on node 1 again
    const listener = await nodes.ws(1);
    await join(listener, "joined-in-outage");
    let n = 0;
    let last = 0;
    await eventually(
      () => {
        if (!said(listener, "joined-in-outage") && Date.now() - last >= 50) {
          a.send({ say: n++, to: "joined-in-outage" });
          last = Date.now();
        }
        return said(listener, "joined-in-outage");
      },
      "a say from node 0 to reach node 1",
      5000,
    );
    expect(Date.now() - back).toBeLessThan(5000);
    // and ids are claimed again in the Redis that restarted empty: a target on the other node is found
    const found = (): boolean => a.received.some((m) => JSON.stringify(m) === '{"from":"ben","payload":"found ann"}');
    let sent = 0;
    await eventually(
      () => {
        // at most 20 a second: within the rate limit
        if (!found() && Date.now() - sent >= 50) {
          b.send({ targets: ["ann"], payload: "found ann" });
          sent = Date.now();
        }
        return found();
      },
      "a target on node 0 to be found from node 1",
      5000,
    );
    for (const { spawned } of servers) await waitFor(spawned, /broker down[\s\S]*broker up/, "the broker up line after the down line");
    expect(await metric(0, "ws_channels_broker_up")).toBe(1);
    b.send({ say: "back", to: "outage" });
    const backHere = (client: WsClient): boolean =>
      client.received.some((m) => JSON.stringify(m) === '{"to":"outage","say":"back","from":"ben"}');
    for (const client of [a, a2]) await eventually(() => backHere(client), "the say from node 1 on node 0");
    await Promise.all([a, a2, b, listener].map((c) => c.close()));
  }, 40_000);

  it("a duplicate ?id= whose claim is still pending is not a target: the message goes to the real holder", async () => {
    const alice = await settled(await nodes.ws(0, "/?id=alice-p"));
    const bob = await settled(await nodes.ws(1, "/?id=bob-p"));
    const admin = new Redis(redis.path);
    try {
      await admin.call("CLIENT", "PAUSE", "800", "ALL"); // every node's claims and lookups wait meanwhile
      const mallory = await nodes.ws(1, "/?id=alice-p");
      bob.send({ targets: ["alice-p"], payload: "for alice" });
      expect(await alice.next()).toEqual({ from: "bob-p", payload: "for alice" });
      expect(await mallory.closedBy()).toEqual({ code: 1008, reason: "id in use" });
      expect(mallory.received).toEqual([]);
    } finally {
      admin.disconnect();
    }
    await Promise.all([alice.close(), bob.close()]);
  }, 20_000);

  it("Redis that stops answering (SIGSTOP): joins, ids and targets are still answered, the broker is reported down, then up", async () => {
    const before = await nodes.ws(0);
    await join(before, "stall");
    redis.pause();
    try {
      for (const { spawned } of servers) await waitFor(spawned, /broker down[\s\S]*broker down/, "a second broker down line", 10_000);
      const fresh = await nodes.ws(1, "/?id=stalled");
      await join(fresh, "stall"); // answered: the node does not wait for Redis
      fresh.send({ targets: ["nobody"], payload: 1 });
      expect(await fresh.next()).toEqual({ error: "unknown targets", targets: ["nobody"] });
      await fresh.close();
    } finally {
      redis.resume();
    }
    for (const { spawned } of servers)
      await waitFor(spawned, /broker down[\s\S]*broker down[\s\S]*broker up/, "the broker up again", 10_000);
    await before.close();
  }, 40_000);

  it("SIGTERM while Redis does not answer: clients get 1001 and the server exits 0 within its bounds", async () => {
    const doomed = servers[1] as (typeof servers)[number];
    const client = await nodes.ws(1);
    await join(client, "bye");
    redis.pause();
    try {
      doomed.spawned.child.kill("SIGTERM");
      expect(await within(client.closed, "the 1001", 5000)).toEqual({ code: 1001, reason: "server shutting down" });
      expect(await exited(doomed.spawned.child, 10_000)).toEqual([0, null]);
    } finally {
      redis.resume();
    }
    servers[1] = await server();
  }, 40_000);

  it("a server killed without a goodbye frees its ids within 15 s", async () => {
    const doomed = servers[0] as (typeof servers)[number];
    const held = await settled(await nodes.ws(0, "/?id=zed"));
    await join(held, "x");
    doomed.spawned.child.kill("SIGKILL");
    await exited(doomed.spawned.child);
    const started = Date.now();
    const back = await openWhenFree(nodes, 1, "/?id=zed", 15_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    await back.close();
    servers[0] = await server();
  }, 40_000);
});

describe("--workers 2 --redis", () => {
  it("each worker is a node on Redis; the primary logs them started and sums their metrics; /readyz is 200", async () => {
    const spawned = spawnProject(children, process.execPath, [
      "packages/server/dist/cli.js",
      "--port",
      "0",
      "--tcp-port",
      "0",
      "--workers",
      "2",
      "--redis",
      redis.path,
      "--admin-port",
      "0",
    ]);
    const ports = await serverPorts(spawned, 10_000);
    await waitFor(spawned, /worker \d+ \(pid \d+\) started[\s\S]*worker \d+ \(pid \d+\) started/, "both workers started", 10_000);
    const [, admin] = await waitFor(
      spawned,
      /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/,
      "the admin line",
    );
    const clients = await Promise.all(Array.from({ length: 4 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    // a client of the first server on Redis hears a client of this cluster
    const outside = await nodes.ws(0);
    await join(outside, "mixed");
    for (const client of clients) await join(client, "mixed");
    (clients[0] as WsClient).send({ say: "from a worker", to: "mixed" });
    expect(await outside.next()).toEqual({ to: "mixed", say: "from a worker" });
    expect((await fetch(`http://127.0.0.1:${admin}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(metrics).toMatch(/^ws_channels_connections\{transport="ws"\} 4$/m);
    expect(metrics).toMatch(/^ws_channels_broker_up 1$/m); // the least of the workers' (both up), not their sum
    expect(metrics.match(/^ws_channels_channels\{worker="\d+"\} 1$/gm)).toHaveLength(2); // "mixed" on each worker, one series each
    spawned.child.kill("SIGTERM");
    for (const client of clients) expect(await client.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await exited(spawned.child)).toEqual([0, null]);
    await outside.close();
  }, 40_000);
});
