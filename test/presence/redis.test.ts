import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Client } from "ws-channels/client";
import { type RunningServer, type ServerOptions, startServer } from "../../packages/server/src/server.js";
import { RedisServer } from "../brokers/redis-server.js";
import { eventually, until, WsClient } from "../helpers.js";
import { exited, killAll, type Spawned, serverPorts, spawnProject, waitFor } from "../processes.js";
import { converged, type Frame, fresh, listen, PresenceView, presenceConformance } from "./conformance.js";

// Servers sharing a real redis-server: the suite's two nodes are two servers in this process;
// the faults below add servers of their own (CLI children where a process must die or stop).
const redis = new RedisServer();
const OPTIONS: ServerOptions = { port: 0, tcpPort: false, maxMessagesPerSecond: 10_000, maxConnectionsPerIp: 5000, presenceMax: 5000 };
let inspect: Redis;
let nodes: RunningServer[] = [];
const extra: RunningServer[] = [];
const opened: WsClient[] = [];
const children: ChildProcess[] = [];
let turn = 0;

beforeAll(async () => {
  await redis.start();
  inspect = new Redis(redis.path); // its offline queue waits out the restart below
  inspect.on("error", () => undefined);
  nodes = [
    await startServer({ ...OPTIONS, spread: { redis: redis.path } }),
    await startServer({ ...OPTIONS, spread: { redis: redis.path } }),
  ];
}, 30_000);
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
  await Promise.all(extra.splice(0).map((s) => s.close()));
  killAll(children);
});
afterAll(async () => {
  await Promise.all(nodes.map((s) => s.close()));
  inspect.disconnect();
  await redis.stop();
});

function open(node: 0 | 1 | undefined, query = ""): Promise<WsClient> {
  const on = nodes[node ?? turn++ % 2] as RunningServer;
  return WsClient.open(`ws://127.0.0.1:${on.ws.port}/${query}`);
}

presenceConformance("two servers on a real redis-server", () => ({ open, raceRuns: 8 }));

/** A client of the server on `port`, closed after the test. */
async function clientAt(port: number): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${port}/`);
  opened.push(c);
  return c;
}

/** A client of the suite's node 0 or 1, closed after the test. */
const client = (node: 0 | 1): Promise<WsClient> => clientAt((nodes[node] as RunningServer).ws.port);

/** A plain join (present, no presence frames). */
async function join(c: WsClient, channel: string): Promise<WsClient> {
  c.send({ join: channel });
  expect(await c.next()).toEqual({ joined: channel });
  return c;
}

/** A `{"presence": CH}` read, as the member gets it (with `partial` when it is). */
async function read(member: WsClient, channel: string): Promise<Frame> {
  member.send({ presence: channel });
  return (await member.next()) as Frame;
}

/** A CLI server on the same Redis. */
async function spawnServer(...flags: string[]): Promise<{ server: Spawned; port: number }> {
  const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--redis", redis.path, ...flags];
  const server = spawnProject(children, process.execPath, args);
  const { ws: port } = await serverPorts(server, 10_000);
  await waitFor(server, /broker up/, "the broker to come up");
  return { server, port };
}

const hasRef = (view: PresenceView, ref: unknown): boolean => view.catchUp().present.has(ref as string);

describe("presence on Redis: servers that stop, die, and Redis itself", () => {
  it("a server closing cleanly removes its entries from Redis and its members leave the others' lists", async () => {
    const bye = fresh("bye");
    const view = new PresenceView(await client(0));
    await listen(view.client, bye);
    const before = new Set(await inspect.smembers("ws-channels:pnodes"));
    const leaving = await startServer({ ...OPTIONS, spread: { redis: redis.path } });
    const refs: unknown[] = [];
    for (let i = 0; i < 2; i++) refs.push((await listen(await clientAt(leaving.ws.port), bye)).ref);
    await until(async () => refs.every((ref) => hasRef(view, ref)), "both joins");
    const node = (await inspect.smembers("ws-channels:pnodes")).find((n) => !before.has(n));
    await leaving.close();
    await until(async () => refs.every((ref) => !hasRef(view, ref)), "both of the closed server's members to leave");
    expect(await inspect.hlen(`ws-channels:p:${bye}`)).toBe(1);
    expect(await inspect.exists(`ws-channels:pn:${node}`)).toBe(0);
    expect(await inspect.sismember("ws-channels:pnodes", node as string)).toBe(0);
  });

  it("a server killed without a goodbye, holding the reaper's lease: its member leaves three survivors' lists within 15 s, exactly once", async () => {
    const crash = fresh("crash");
    const third = await startServer({ ...OPTIONS, spread: { redis: redis.path } });
    extra.push(third);
    const views: PresenceView[] = [];
    for (const port of [...nodes, third].map((s) => s.ws.port)) {
      const view = new PresenceView(await clientAt(port));
      await listen(view.client, crash);
      views.push(view);
    }
    const before = new Set(await inspect.smembers("ws-channels:pnodes"));
    const doomed = await spawnServer();
    const { ref } = await listen(await clientAt(doomed.port), crash);
    for (const view of views) await until(async () => hasRef(view, ref), "the victim's join everywhere");
    const node = (await inspect.smembers("ws-channels:pnodes")).find((n) => !before.has(n));
    expect(node).toBeDefined();
    doomed.server.child.kill("SIGKILL");
    const killed = Date.now();
    // as if the dead server held the lease: a survivor must take it over once it expires
    await inspect.set("ws-channels:preaper", node as string, "PX", 6000);
    for (const view of views) await until(async () => !hasRef(view, ref), "the victim's leave", 15_000);
    expect(Date.now() - killed).toBeLessThan(15_000);
    expect(await inspect.sismember("ws-channels:pnodes", node as string)).toBe(0);
    expect(await inspect.get("ws-channels:preaper")).not.toBe(node);
    // a join after the reap: every diff before it, a second leave included, has arrived once it has
    const marker = await join(await client(0), crash);
    await converged(views, marker, crash);
    const leavesOf = (view: PresenceView): number =>
      (view.client.received as Frame[]).filter((f) => (f.leaves as string[] | undefined)?.includes(ref as string)).length;
    for (const view of views) expect(leavesOf(view)).toBe(1);
  }, 40_000);

  it("Redis killed and restarted: snapshots and reads say partial meanwhile, then every listener on both servers has the whole list again", async () => {
    const down = fresh("down");
    const views = [new PresenceView(await client(0)), new PresenceView(await client(1))];
    for (const view of views) expect((await listen(view.client, down)).partial).toBeUndefined();
    const counter = await client(1);
    await listen(counter, down, "count");
    const readers = [await join(await client(0), down), await join(await client(1), down)];
    const going = [await join(await client(0), down), await join(await client(1), down)];
    await converged(views, readers[0] as WsClient, down);
    await redis.kill();
    for (const reader of readers) await until(async () => (await read(reader, down)).partial === true, "a partial read on each server");
    // changes on both servers that cannot cross while Redis is down
    await Promise.all(going.map((c) => c.close()));
    for (const node of [0, 1] as const) await join(await client(node), down); // two late joins
    const partialView = new PresenceView(await client(1));
    const joined = await listen(partialView.client, down);
    expect(joined.partial).toBe(true);
    views.push(partialView);
    const counted = await client(0);
    expect(await listen(counted, down, "count")).toMatchObject({ partial: true });
    const library = new Client(`ws://127.0.0.1:${(nodes[0] as RunningServer).ws.port}/`, { WebSocket });
    const room = library.join(down, { presence: true });
    await eventually(() => room.partial, "the client's room to say partial");
    expect(views.map((view) => view.catchUp().partial)).toEqual([false, false, true]);

    await redis.start();
    const truth = await converged(views, readers[0] as WsClient, down, 15_000);
    expect(truth).toHaveLength(2 + 2 + 2 + 2 + 1 + 1); // listeners, counters, readers, late joins, the late listener, the client
    expect((await inspect.hkeys(`ws-channels:p:${down}`)).sort()).toEqual(truth);
    expect((await read(readers[1] as WsClient, down)).partial).toBeUndefined();
    for (const view of views) {
      expect(view.partial).toBe(false);
      const fresh = (view.client.received as Frame[]).filter((f) => Array.isArray(f.members));
      expect(fresh.at(-1), "a members frame without partial").not.toHaveProperty("partial");
    }
    const refsOf = (): string[] => [...room.members().values()].flatMap((refs) => [...refs.keys()]).sort();
    await eventually(() => !room.partial && refsOf().join() === truth.join(), "the client's list to be whole", 10_000);
    const counts = (c: WsClient): unknown => (c.received as Frame[]).filter((f) => f.presence === down).at(-1)?.count;
    for (const c of [counter, counted])
      await eventually(() => JSON.stringify(counts(c)) === `{"connections":${truth.length},"users":${truth.length}}`, "the counts");
    library.close();
  }, 60_000);

  it("Redis paused past the command timeout, its data kept: each server writes back only what changed meanwhile", async () => {
    const kept = fresh("kept");
    const views = [new PresenceView(await client(0)), new PresenceView(await client(1))];
    for (const view of views) await listen(view.client, kept);
    const readers = [await join(await client(0), kept), await join(await client(1), kept)];
    const going = [await join(await client(0), kept), await join(await client(1), kept)];
    await converged(views, readers[0] as WsClient, kept);
    redis.pause();
    // a read waits for Redis until the command timeout, then answers this node's own, partial
    for (const reader of readers) {
      const seen = reader.received.length;
      reader.send({ presence: kept });
      await eventually(() => reader.received.length > seen, "a read while Redis is paused", 10_000);
      expect(reader.received.at(-1)).toMatchObject({ partial: true });
    }
    await Promise.all(going.map((c) => c.close()));
    for (const node of [0, 1] as const) await join(await client(node), kept);
    redis.resume();
    // a join or leave published twice, or a leave of an entry not there, fails the views' checks
    const truth = await converged(views, readers[0] as WsClient, kept, 15_000);
    expect(truth).toHaveLength(2 + 2 + 2);
    expect((await inspect.hkeys(`ws-channels:p:${kept}`)).sort()).toEqual(truth);
    for (const view of views) expect(view.partial).toBe(false);
  }, 40_000);

  it("a server paused past the reaper's limit (SIGSTOP) is reaped; continued (SIGCONT), it writes its entries back into everyone's lists", async () => {
    const pause = fresh("pause");
    const views = [new PresenceView(await client(0)), new PresenceView(await client(1))];
    for (const view of views) await listen(view.client, pause);
    const paused = await spawnServer("--ping-interval", "60000");
    const victim = new PresenceView(await clientAt(paused.port));
    const { ref } = await listen(victim.client, pause);
    for (const view of views) await until(async () => hasRef(view, ref), "the paused server's member in every list");
    paused.server.child.kill("SIGSTOP");
    for (const view of views) await until(async () => !hasRef(view, ref), "the paused server to be reaped", 20_000);
    expect(await inspect.hexists(`ws-channels:p:${pause}`, ref as string)).toBe(0);
    paused.server.child.kill("SIGCONT");
    for (const view of views) await until(async () => hasRef(view, ref), "its member back in every list", 15_000);
    expect(await inspect.hexists(`ws-channels:p:${pause}`, ref as string)).toBe(1);
    // its own listener lost nobody, and the others see exactly what it sees
    const marker = await join(await client(1), pause);
    await converged([...views, victim], marker, pause);
    paused.server.child.kill("SIGTERM");
    expect(await exited(paused.server.child)).toEqual([0, null]);
  }, 60_000);
});
