import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, WsClient } from "./helpers.js";
import { connectToWorker, killAll, type Spawned, serverPorts, spawnProject, startedWorkers } from "./processes.js";

type Delivery = { to: string; say: unknown; from?: string; offset: number; epoch: string };
type Joined = { joined: string; epoch: string; offset: number; recovered?: boolean; missed?: { say: unknown; offset: number }[] };

const children: ChildProcess[] = [];
const clients: WsClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  killAll(children);
});

/** Starts the CLI with two workers and history on. @returns it and its WebSocket port. */
async function cluster(): Promise<{ server: Spawned; port: number }> {
  const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--workers", "2", "--history-size", "1000"];
  const server = spawnProject(children, process.execPath, [...args, "--max-messages-per-second", "100000"]);
  const { ws: port } = await serverPorts(server, 10_000);
  await eventually(() => startedWorkers(server).length === 2, "both workers", 10_000);
  return { server, port };
}

/** A client whose connection worker `node` holds, as the kernel shows it. */
async function on(server: Spawned, port: number, node: 0 | 1, id?: string): Promise<WsClient> {
  const path = id === undefined ? "/" : `/?id=${id}`;
  const c = await connectToWorker(
    server,
    node,
    port,
    () => WsClient.open(`ws://127.0.0.1:${port}${path}`),
    (c) => (c.ws as unknown as { _socket: Socket })._socket,
    (c) => c.close(),
  );
  clients.push(c);
  return c;
}

async function join(c: WsClient, channel: string, recover?: { offset: number; epoch: string }): Promise<Joined> {
  c.send(recover === undefined ? { join: channel } : { join: channel, recover });
  return (await c.next()) as Joined;
}

/** Reads deliveries until the one saying `last`. @returns them, in order. */
async function readUntil(c: WsClient, last: number): Promise<Delivery[]> {
  const got: Delivery[] = [];
  for (let i = 0; i < 10_000; i++) {
    const d = (await c.next()) as Delivery;
    got.push(d);
    if (d.say === last) return got;
  }
  throw new Error(`say ${last} never came`);
}

describe("--workers 2 --history-size: the primary keeps the history", () => {
  it("says from both workers share one sequence of offsets; a join on either answers the same position", async () => {
    const { server, port } = await cluster();
    const a = await on(server, port, 0, "ann");
    const b = await on(server, port, 1, "bob");
    const ja = await join(a, "room");
    const jb = await join(b, "room");
    expect(jb).toEqual({ joined: "room", epoch: ja.epoch, offset: ja.offset });
    a.send({ say: 1, to: "room" });
    expect(await b.next()).toEqual({ to: "room", say: 1, from: "ann", offset: 1, epoch: ja.epoch });
    b.send({ say: 2, to: "room" });
    expect(await a.next()).toEqual({ to: "room", say: 1, from: "ann", offset: 1, epoch: ja.epoch });
    expect(await a.next()).toEqual({ to: "room", say: 2, from: "bob", offset: 2, epoch: ja.epoch });
    expect(await b.next()).toEqual({ to: "room", say: 2, from: "bob", offset: 2, epoch: ja.epoch });
  }, 30_000);

  it("a client back on the other worker recovers exactly what it missed while a publisher keeps going", async () => {
    const { server, port } = await cluster();
    const publisher = await on(server, port, 0, "pub");
    const { epoch } = await join(publisher, "room");
    const leaver = await on(server, port, 0);
    await join(leaver, "room");
    const total = 600;
    let said = 0;
    const sayBatch = (n: number): void => {
      for (let i = 0; i < n && said < total; i++) publisher.send({ say: ++said, to: "room" });
    };
    sayBatch(50);
    const seen = await readUntil(leaver, 50);
    const last = seen[seen.length - 1] as Delivery;
    expect(last.offset).toBe(50);
    await leaver.close();
    sayBatch(100); // missed by the leaver
    await readUntil(publisher, 150);
    // the publisher keeps going while the client comes back on worker 1
    const keepGoing = (async () => {
      while (said < total) {
        const upTo = Math.min(said + 25, total);
        sayBatch(25);
        await readUntil(publisher, upTo);
      }
    })();
    const back = await on(server, port, 1);
    const joined = await join(back, "room", { offset: last.offset, epoch });
    expect(joined).toMatchObject({ joined: "room", recovered: true, epoch });
    const missed = joined.missed ?? [];
    expect(missed.map((m) => m.offset)).toEqual(Array.from({ length: joined.offset - 50 }, (_, i) => 51 + i));
    expect(missed.map((m) => m.say)).toEqual(missed.map((m) => m.offset)); // say n has offset n: one publisher
    await keepGoing;
    const live = joined.offset < total ? await readUntil(back, total) : [];
    expect(live.map((d) => d.offset)).toEqual(Array.from({ length: total - joined.offset }, (_, i) => joined.offset + 1 + i));
  }, 60_000);

  it("a new primary (a restart) starts a new epoch: a recovery from before answers recovered: false", async () => {
    const first = await cluster();
    const a = await on(first.server, first.port, 0, "ann");
    const { epoch } = await join(a, "room");
    a.send({ say: 1, to: "room" });
    await readUntil(a, 1);
    await a.close();
    killAll(children);
    const second = await cluster();
    const back = await on(second.server, second.port, 1);
    const joined = await join(back, "room", { offset: 1, epoch });
    expect(joined).toEqual({ joined: "room", recovered: false, epoch: expect.any(String), offset: 0 });
    expect(joined.epoch).not.toBe(epoch);
  }, 60_000);
});
