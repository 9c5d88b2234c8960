import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisServer } from "./brokers/redis-server.js";
import { eventually, TcpClient, WsClient } from "./helpers.js";
import { exited, killAll, type Spawned, serverPorts, spawnProject, waitFor } from "./processes.js";
import { join, openWhenFree, spreadsOverNodes, type TwoNodes } from "./spread.js";

const redis = new RedisServer();
const children: ChildProcess[] = [];
const servers: { spawned: Spawned; ports: { ws: number; tcp: number } }[] = [];

/** A server on the shared Redis, its lines as JSON; resolves once it serves with every node. */
async function server(): Promise<{ spawned: Spawned; ports: { ws: number; tcp: number } }> {
  const spawned = spawnProject(children, process.execPath, ["dist/server/cli.js", "--port", "0", "--tcp-port", "0", "--redis", redis.path]);
  const ports = await serverPorts(spawned, 10_000);
  await waitFor(spawned, /broker up/, "the broker to come up");
  return { spawned, ports };
}

const nodes: TwoNodes = {
  ws: (node, path = "/") => WsClient.open(`ws://127.0.0.1:${servers[node]?.ports.ws}${path}`),
  tcp: (node) => TcpClient.open(servers[node]?.ports.tcp as number),
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

describe("two servers with --redis: faults", () => {
  it("Redis killed during traffic: both keep serving their own clients; restarted, cross-node delivery resumes within 5 s", async () => {
    const [a, b] = [await nodes.ws(0, "/?id=ann"), await nodes.ws(1, "/?id=ben")];
    const a2 = await nodes.ws(0, "/?id=amy");
    for (const client of [a, a2, b]) await join(client, "outage");
    await redis.kill();
    for (const { spawned } of servers) await waitFor(spawned, /broker down/, "the broker down line");
    // each node serves its own: join answered, say among local members, targets between local ids
    await join(a, "joined-in-outage");
    a.send({ say: "local", to: "outage" });
    expect(await a.next()).toEqual({ to: "outage", say: "local" });
    expect(await a2.next()).toEqual({ to: "outage", say: "local" });
    a.send({ targets: ["amy"], payload: "still local" });
    expect(await a2.next()).toBe("still local");
    await redis.start();
    for (const { spawned } of servers) await waitFor(spawned, /broker up[\s\S]*broker down[\s\S]*broker up/, "the broker up line", 10_000);
    // within 5 s of Redis's return (the broker is up again by now), says cross nodes again
    const listener = await nodes.ws(1);
    await join(listener, "joined-in-outage");
    let n = 0;
    await eventually(
      () => {
        if (listener.received.length === 0) a.send({ say: n++, to: "joined-in-outage" });
        return listener.received.length > 0;
      },
      "a say from node 0 to reach node 1",
      5000,
    );
    b.send({ say: "back", to: "outage" });
    for (const client of [a, a2]) {
      await eventually(() => client.received.some((m) => JSON.stringify(m) === JSON.stringify({ to: "outage", say: "back" })), "back");
    }
    await Promise.all([a, a2, b, listener].map((c) => c.close()));
  }, 40_000);

  it("a server killed without a goodbye frees its ids within 15 s", async () => {
    const doomed = servers[0] as (typeof servers)[number];
    const held = await nodes.ws(0, "/?id=zed");
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
