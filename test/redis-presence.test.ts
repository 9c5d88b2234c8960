import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { RedisServer } from "./brokers/redis-server.js";
import { until, WsClient } from "./helpers.js";
import { killAll, serverPorts, spawnProject, waitFor } from "./processes.js";

const redis = new RedisServer();
let inspect: Redis;
const servers: RunningServer[] = [];
const clients: WsClient[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  await redis.start();
  inspect = new Redis(redis.path);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  killAll(children);
  inspect.disconnect();
  await redis.stop();
});

async function server(): Promise<RunningServer> {
  const started = await startServer({ port: 0, tcpPort: false, spread: { redis: redis.path } });
  servers.push(started);
  return started;
}

async function client(on: RunningServer, id: string): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${on.ws.port}/?id=${id}`);
  clients.push(c);
  return c;
}

type Entry = { ref: string; id: string | null };
type Frame = { joined?: string; ref?: string; presence?: Entry[] | string; joins?: Entry[]; leaves?: string[]; members?: Entry[] };

/** Joins `channel` with presence: the joined frame (its snapshot). */
async function listen(c: WsClient, channel: string): Promise<Frame> {
  c.send({ join: channel, presence: true });
  return (await c.next()) as Frame;
}

const ids = (entries: Entry[] | undefined): (string | null)[] => (entries ?? []).map((e) => e.id).sort();

describe("presence on two servers sharing a real redis-server", () => {
  it("each sees the other's members in snapshots, diffs and reads; a leave crosses over", async () => {
    const [one, two] = [await server(), await server()];
    const ann = await client(one, "ann");
    expect(ids((await listen(ann, "room")).presence as Entry[])).toEqual(["ann"]);
    const ben = await client(two, "ben");
    const joined = await listen(ben, "room");
    expect(ids(joined.presence as Entry[])).toEqual(["ann", "ben"]);
    expect(await ann.next()).toEqual({ presence: "room", joins: [{ ref: joined.ref, id: "ben" }], leaves: [] });
    ben.send({ presence: "room" });
    expect(ids(((await ben.next()) as Frame).members)).toEqual(["ann", "ben"]);
    const amy = await client(one, "amy");
    amy.send({ join: "room" }); // present without listening
    expect(await amy.next()).toMatchObject({ joined: "room" });
    expect(ids(((await ben.next()) as Frame).joins)).toEqual(["amy"]);
    expect(ids(((await ann.next()) as Frame).joins)).toEqual(["amy"]);
    await amy.close();
    const left = (await ben.next()) as Frame;
    expect(left.joins).toEqual([]);
    expect(left.leaves).toHaveLength(1);
    expect(((await ann.next()) as Frame).leaves).toEqual(left.leaves);
    expect(await inspect.hlen("ws-channels:p:room")).toBe(2);
  });

  it("a herd of joins on one server reaches the other's listener as a few diffs, applied exactly", async () => {
    const [one, two] = [await server(), await server()];
    const ann = await client(one, "ann");
    await listen(ann, "herd");
    const herd = await Promise.all(Array.from({ length: 50 }, (_, i) => client(two, `h${i}`)));
    for (const c of herd) c.send({ join: "herd" });
    const present = new Set<string | null>(["ann"]);
    let frames = 0;
    await until(async () => {
      const frame = (await ann.next()) as Frame;
      frames++;
      for (const entry of frame.joins ?? []) {
        expect(present.has(entry.id), `a second join of ${entry.id}`).toBe(false);
        present.add(entry.id);
      }
      return present.size === 51;
    }, "every join of the herd");
    expect(frames).toBeLessThan(50);
    expect(await inspect.hlen("ws-channels:p:herd")).toBe(51);
  });

  it("joins and leaves on one server racing listens on the other: snapshot then diffs give Redis's presence, no phantom, none missing", async () => {
    const [one, two] = [await server(), await server()];
    const churn = await Promise.all(Array.from({ length: 40 }, (_, i) => client(two, `c${i}`)));
    const sent = churn.map(() => 0);
    const send = (i: number, message: object): void => {
      churn[i]?.send(message);
      sent[i] = (sent[i] ?? 0) + 1;
    };
    const answered = (): Promise<void> =>
      until(async () => churn.every((c, i) => c.received.length >= (sent[i] ?? 0)), "every join and leave answered");
    for (let round = 0; round < 10; round++) {
      const channel = `race${round}`;
      const listener = await client(one, `l${round}`);
      // joins and leaves in flight on the other server while the listen is answered
      for (const i of churn.keys()) send(i, i % 3 === round % 3 ? { leave: channel } : { join: channel });
      listener.send({ join: channel, presence: true });
      for (let toggle = 0; toggle < 6; toggle++) {
        for (const i of churn.keys()) if (i % 2 === toggle % 2) send(i, toggle % 3 === 0 ? { leave: channel } : { join: channel });
        if (toggle % 2 === 1) await answered(); // some before the snapshot, some after
      }
      const present = new Map<string, Entry>();
      const applyFrame = (frame: Frame): void => {
        for (const entry of Array.isArray(frame.presence) ? frame.presence : []) {
          expect(present.has(entry.ref), `${entry.ref} twice in the snapshot`).toBe(false);
          present.set(entry.ref, entry);
        }
        for (const entry of frame.joins ?? []) {
          expect(present.has(entry.ref), `a second join of ${entry.ref}`).toBe(false);
          present.set(entry.ref, entry);
        }
        for (const ref of frame.leaves ?? []) expect(present.delete(ref), `a leave of absent ${ref}`).toBe(true);
      };
      let seen = 0;
      await until(async () => {
        for (const frame of listener.received.slice(seen) as Frame[]) applyFrame(frame);
        seen = listener.received.length;
        const inRedis = await inspect.hkeys(`ws-channels:p:${channel}`);
        const churned = await inspect.hlen(`ws-channels:p:${channel}`);
        return seen > 0 && churned > 1 && inRedis.length === present.size && inRedis.every((ref) => present.has(ref));
      }, "the listener's list to be Redis's");
    }
  });

  it("a server closing cleanly removes its entries from Redis and its members leave the other's lists", async () => {
    const [one, two] = [await server(), await server()];
    const ann = await client(one, "ann");
    await listen(ann, "bye");
    const ben = await client(two, "ben");
    const bens = await listen(ben, "bye");
    await ann.next(); // ben's join
    const cal = await client(two, "cal");
    cal.send({ join: "bye" });
    const cals = ((await ann.next()) as Frame).joins?.[0]?.ref;
    await servers.splice(1, 1)[0]?.close();
    const gone = new Set<string>();
    await until(async () => {
      for (const ref of ((await ann.next()) as Frame).leaves ?? []) gone.add(ref);
      return gone.size === 2;
    }, "both of the closed server's members to leave");
    expect([...gone].sort()).toEqual([bens.ref, cals].sort());
    expect(await inspect.hlen("ws-channels:p:bye")).toBe(1);
    expect(await inspect.keys("ws-channels:pn:*")).toHaveLength(1);
    expect(await inspect.smembers("ws-channels:pnodes")).toHaveLength(1);
  });

  it("a server killed without a goodbye, holding the reaper's lease: its member leaves three survivors' lists within 15 s, exactly once", async () => {
    const survivors = [await server(), await server(), await server()];
    const listeners: WsClient[] = [];
    for (const [i, on] of survivors.entries()) {
      const c = await client(on, `s${i}`);
      await listen(c, "crash");
      listeners.push(c);
    }
    const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--redis", redis.path];
    const before = new Set(await inspect.smembers("ws-channels:pnodes"));
    const doomed = spawnProject(children, process.execPath, args);
    const ports = await serverPorts(doomed, 10_000);
    await waitFor(doomed, /broker up/, "the broker to come up");
    const victim = await WsClient.open(`ws://127.0.0.1:${ports.ws}/?id=victim`);
    clients.push(victim);
    const { ref } = await listen(victim, "crash");
    const frames = (c: WsClient): Frame[] => c.received as Frame[];
    const leavesOf = (c: WsClient): number => frames(c).filter((f) => f.leaves?.includes(ref as string)).length;
    for (const c of listeners)
      await until(async () => frames(c).some((f) => f.joins?.some((e) => e.ref === ref)), "the victim's join everywhere");
    const node = (await inspect.smembers("ws-channels:pnodes")).find((n) => !before.has(n));
    expect(node).toBeDefined();
    doomed.child.kill("SIGKILL");
    const killed = Date.now();
    // as if the dead server held the lease: a survivor must take it over once it expires
    await inspect.set("ws-channels:preaper", node as string, "PX", 6000);
    for (const c of listeners) await until(async () => leavesOf(c) > 0, "the victim's leave", 15_000);
    expect(Date.now() - killed).toBeLessThan(15_000);
    expect(await inspect.smembers("ws-channels:pnodes")).toHaveLength(3);
    expect(await inspect.get("ws-channels:preaper")).not.toBe(node);
    // a join after the reap: every diff before it, a second leave included, has arrived once it has
    const marker = await client(survivors[0] as RunningServer, "marker");
    marker.send({ join: "crash" });
    for (const c of listeners) await until(async () => frames(c).some((f) => f.joins?.some((e) => e.id === "marker")), "the marker's join");
    for (const c of listeners) expect(leavesOf(c)).toBe(1);
  }, 30_000);

  it("Redis killed: each server's own presence goes on (joins, leaves, new listeners), the others' as last seen", async () => {
    const [one, two] = [await server(), await server()];
    const ann = await client(one, "ann");
    await listen(ann, "down");
    const ben = await client(two, "ben");
    await listen(ben, "down");
    expect(ids(((await ann.next()) as Frame).joins)).toEqual(["ben"]);
    await redis.kill();
    const amy = await client(one, "amy");
    amy.send({ join: "down" });
    expect(await amy.next()).toMatchObject({ joined: "down" });
    expect(ids(((await ann.next()) as Frame).joins)).toEqual(["amy"]);
    const cal = await client(one, "cal");
    expect(ids((await listen(cal, "down")).presence as Entry[])).toEqual(["amy", "ann", "ben", "cal"]);
    expect(ids(((await ann.next()) as Frame).joins)).toEqual(["cal"]);
    await amy.close();
    for (const c of [ann, cal]) expect(((await c.next()) as Frame).leaves).toHaveLength(1);
    await redis.start();
  });
});
