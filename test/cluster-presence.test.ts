import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, WsClient } from "./helpers.js";
import { alive, killAll, type Spawned, serverPorts, socketOwners, spawnProject, waitFor } from "./processes.js";

// Presence across real node:cluster workers (the CLI's --workers 2): the primary holds it.
const children: ChildProcess[] = [];
const clients: WsClient[] = [];
let server: Spawned;
let port: number;

type Entry = { ref: string; id: string | null };
type Frame = Record<string, unknown>;

function liveWorkers(): number[] {
  return [...server.output().matchAll(/worker (\d+) \(pid (\d+)\) started/g)].map((m) => Number(m[2])).filter(alive);
}

/** A client on worker `node` (0 or 1 of the live workers): connects until the kernel shows that worker holds it. */
async function on(node: 0 | 1, query = ""): Promise<WsClient> {
  const pid = liveWorkers()[node] as number;
  for (let attempt = 0; attempt < 20; attempt++) {
    const client = await WsClient.open(`ws://127.0.0.1:${port}/${query}`);
    const socket = (client.ws as unknown as { _socket: Socket })._socket;
    let owner: number | undefined;
    const deadline = Date.now() + 2000;
    while (owner === undefined && Date.now() < deadline)
      owner = (await socketOwners(port, [socket.localPort as number], liveWorkers())).get(socket.localPort as number);
    if (owner === pid) {
      clients.push(client);
      return client;
    }
    await client.close();
  }
  throw new Error(`no connection landed on worker ${pid} in 20 attempts`);
}

/** Joins `channel` with presence. @returns its ref and the snapshot, as refs. */
async function listen(client: WsClient, channel: string): Promise<{ ref: string; present: Map<string, Entry> }> {
  client.send({ join: channel, presence: true });
  const joined = (await client.next()) as { joined: string; ref: string; presence: Entry[] };
  expect(joined.joined).toBe(channel);
  return { ref: joined.ref, present: new Map(joined.presence.map((e) => [e.ref, e])) };
}

/** Applies one presence diff to `present`, failing on a phantom or a missing entry. @returns the frame. */
function apply(frame: Frame, present: Map<string, Entry>): Frame {
  for (const entry of (frame.joins ?? []) as Entry[]) {
    expect(present.has(entry.ref), `a second join of ${entry.ref}`).toBe(false);
    present.set(entry.ref, entry);
  }
  for (const ref of (frame.leaves ?? []) as string[]) expect(present.delete(ref), `a leave of absent ${ref}`).toBe(true);
  return frame;
}

async function members(client: WsClient, channel: string): Promise<string[]> {
  client.send({ presence: channel });
  const { members } = (await client.next()) as { members: Entry[] };
  return members.map((e) => e.ref).sort();
}

beforeAll(async () => {
  server = spawnProject(children, process.execPath, [
    "packages/server/dist/cli.js",
    "--port",
    "0",
    "--tcp-port",
    "0",
    "--workers",
    "2",
    "--max-messages-per-second",
    "10000",
  ]);
  ({ ws: port } = await serverPorts(server, 10_000));
  await eventually(() => liveWorkers().length === 2, "both workers", 10_000);
}, 20_000);

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  killAll(children);
});

describe("--workers 2: presence held by the primary", () => {
  it("clients on both workers see each other in snapshots, diffs and reads", async () => {
    const a = await on(0, "?id=ann");
    const b = await on(1, "?id=bob");
    const first = await listen(a, "room");
    expect([...first.present.keys()]).toEqual([first.ref]);
    const second = await listen(b, "room");
    expect([...second.present.values()]).toEqual([
      { ref: first.ref, id: "ann" },
      { ref: second.ref, id: "bob" },
    ]);
    expect(await a.next()).toEqual({ presence: "room", joins: [{ ref: second.ref, id: "bob" }], leaves: [] });
    expect(await members(a, "room")).toEqual([first.ref, second.ref].sort());
    expect(await members(b, "room")).toEqual([first.ref, second.ref].sort());
    // a plain join on worker 1 is present too; a leave there reaches worker 0's listener
    const c = await on(1, "?id=cy");
    c.send({ join: "room" });
    expect(await c.next()).toEqual({ joined: "room" });
    const joinedC = (await a.next()) as { joins: Entry[] };
    expect(joinedC).toMatchObject({ presence: "room", joins: [{ id: "cy" }], leaves: [] });
    expect(await b.next()).toEqual(joinedC);
    c.send({ leave: "room" });
    expect(await a.next()).toEqual({ presence: "room", joins: [], leaves: [joinedC.joins[0]!.ref] });
    expect(await b.next()).toEqual({ presence: "room", joins: [], leaves: [joinedC.joins[0]!.ref] });
    await Promise.all([a, b, c].map((x) => x.close()));
  }, 30_000);

  it("a herd of joins on the other worker is a few frames, and the list ends whole", async () => {
    const a = await on(0);
    const { present } = await listen(a, "hall");
    const herd = await Promise.all(Array.from({ length: 200 }, () => on(1)));
    for (const h of herd) h.send({ join: "hall" });
    await Promise.all(herd.map((h) => h.next()));
    let frames = 0;
    while (present.size < 201) {
      apply((await a.next()) as Frame, present);
      frames++;
    }
    // one frame per turn of the primary's at most, never one per join
    expect(frames).toBeLessThan(50);
    expect([...present.keys()].sort()).toEqual(await members(a, "hall"));
    await Promise.all([a, ...herd].map((x) => x.close()));
  }, 60_000);

  it("200 connections joining with presence at once (both workers) all end with every entry", async () => {
    // Many listens in flight at once: a worker gets the primary's snapshot and the diffs after it in
    // one read, and must have its mirror filled from the snapshot before it applies those diffs.
    const crowd = await Promise.all(Array.from({ length: 200 }, () => WsClient.open(`ws://127.0.0.1:${port}/`)));
    clients.push(...crowd);
    const lists = crowd.map(() => new Map<string, Entry>());
    for (const c of crowd) c.send({ join: "crowd", presence: true });
    await Promise.all(
      crowd.map(async (c, i) => {
        const list = lists[i] as Map<string, Entry>;
        const joined = (await c.next()) as { presence: Entry[] };
        for (const entry of joined.presence) list.set(entry.ref, entry);
        while (list.size < 200) apply((await c.next()) as Frame, list);
      }),
    );
    const expected = await members(crowd[0] as WsClient, "crowd");
    expect(expected).toHaveLength(200);
    for (const list of lists) expect([...list.keys()].sort()).toEqual(expected);
    await Promise.all(crowd.map((c) => c.close()));
  }, 60_000);

  it("joins and leaves racing listens on both workers: snapshot then diffs give the presence at every moment", async () => {
    const listeners: { client: WsClient; present: Map<string, Entry> }[] = [];
    const churn = await Promise.all(Array.from({ length: 10 }, (_, i) => on((i % 2) as 0 | 1)));
    const racing = churn.map(async (c) => {
      for (let i = 0; i < 5; i++) {
        c.send({ join: "race" });
        c.send({ leave: "race" }); // join and leave back to back: cancelled, or a join then a leave
        await c.next();
        await c.next();
      }
      c.send({ join: "race" });
      await c.next();
    });
    for (let i = 0; i < 4; i++) {
      const client = await on((i % 2) as 0 | 1);
      listeners.push({ client, present: (await listen(client, "race")).present });
    }
    await Promise.all(racing);
    const marker = await on(0);
    marker.send({ join: "race" });
    await marker.next();
    const expected = await members(marker, "race");
    for (const { client, present } of listeners) {
      while (present.size < expected.length || [...present.keys()].sort().join() !== expected.join())
        apply((await client.next()) as Frame, present);
      expect([...present.keys()].sort()).toEqual(expected);
    }
    await Promise.all([...churn, marker, ...listeners.map((l) => l.client)].map((x) => x.close()));
  }, 60_000);

  it("a SIGKILLed worker's entries leave at once, one diff per channel", async () => {
    const [victim] = liveWorkers() as [number, number];
    const doomed = [await on(0, "?id=dora"), await on(0, "?id=dan")];
    for (const d of doomed)
      for (const channel of ["r1", "r2"]) {
        d.send({ join: channel });
        await d.next();
      }
    const a = await on(1, "?id=ann");
    const one = await listen(a, "r1");
    const two = await listen(a, "r2");
    expect(one.present.size).toBe(3);
    expect(two.present.size).toBe(3);
    process.kill(victim, "SIGKILL");
    await waitFor(server, new RegExp(`pid ${victim}\\) died with signal SIGKILL`), "the death line");
    const frames = [(await a.next()) as Frame, (await a.next()) as Frame].sort((x, y) =>
      String(x.presence).localeCompare(String(y.presence)),
    );
    expect(frames.map((f) => f.presence)).toEqual(["r1", "r2"]);
    apply(frames[0]!, one.present);
    apply(frames[1]!, two.present);
    expect([...one.present.keys()]).toEqual([one.ref]);
    expect([...two.present.keys()]).toEqual([two.ref]);
    // nothing more about the dead worker: the next frame a read answers
    expect(await members(a, "r1")).toEqual([one.ref]);
  }, 30_000);
});
