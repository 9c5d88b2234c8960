import { describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { eventually, serverPerTest, until, WsClient } from "./helpers.js";

type Delivery = { to: string; say: unknown; from?: string; offset: number; epoch: string };
type Joined = { joined: string; epoch: string; offset: number; recovered?: boolean; missed?: { say: unknown; offset: number }[] };

const fixture = serverPerTest({ port: 0, tcpPort: false, maxMessagesPerSecond: 100_000, historySize: 100 });

const start = fixture.start;

async function client(id?: string): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${fixture.server.ws.port}/${id === undefined ? "" : `?id=${id}`}`);
  return fixture.closeAfter(c);
}

async function join(c: WsClient, channel: string, recover?: { offset: number; epoch: string }): Promise<Joined> {
  c.send(recover === undefined ? { join: channel } : { join: channel, recover });
  return (await c.next()) as Joined;
}

/** Says `count` messages (1, 2, 3... as `say`) to `channel` from `c`, a member, and waits for its own copy of the last. */
async function say(c: WsClient, channel: string, count: number, first = 1): Promise<void> {
  for (let i = first; i < first + count; i++) c.send({ say: i, to: channel });
  while (((await c.next()) as Delivery).say !== first + count - 1);
}

describe("history on one process", () => {
  it("a join answers the position; each say carries the channel's next offset and its epoch", async () => {
    await start();
    const a = await client("ann");
    const joined = await join(a, "room");
    expect(joined).toEqual({ joined: "room", epoch: expect.any(String), offset: 0 });
    a.send({ say: { text: "hi" }, to: "room" });
    a.send({ say: "two", to: "room" });
    expect(await a.next()).toEqual({ to: "room", say: { text: "hi" }, from: "ann", offset: 1, epoch: joined.epoch });
    expect(await a.next()).toEqual({ to: "room", say: "two", from: "ann", offset: 2, epoch: joined.epoch });
    const b = await client();
    expect(await join(b, "room")).toEqual({ joined: "room", epoch: joined.epoch, offset: 2 });
    b.send({ say: 3, to: "room" });
    expect(await b.next()).toEqual({ to: "room", say: 3, offset: 3, epoch: joined.epoch });
  });

  it("a client that never received a say recovers from its joined position", async () => {
    await start();
    const a = await client();
    const { epoch, offset } = await join(a, "room");
    await a.close();
    const b = await client("bob");
    await join(b, "room");
    await say(b, "room", 3);
    const back = await client();
    expect(await join(back, "room", { offset, epoch })).toEqual({
      joined: "room",
      recovered: true,
      epoch,
      offset: 3,
      missed: [1, 2, 3].map((n) => ({ say: n, from: "bob", offset: n })),
    });
    b.send({ say: 4, to: "room" });
    expect(await back.next()).toEqual({ to: "room", say: 4, from: "bob", offset: 4, epoch });
  });

  it("50 clients recovering while a publisher keeps going: every say once, in order", async () => {
    await start({ historySize: 1000 });
    const total = 400;
    const publisher = await client();
    const { epoch } = await join(publisher, "live");
    const readers = await Promise.all(Array.from({ length: 50 }, () => client()));
    for (const r of readers) expect(await join(r, "live")).toMatchObject({ offset: 0 });
    const publishing = (async () => {
      for (let i = 1; i <= total; i += 10) await say(publisher, "live", 10, i);
    })();
    const seen = await Promise.all(
      readers.map(async (first, i) => {
        const offsets: number[] = [];
        // each reader drops off at another point of the stream, and comes back with recover
        while (offsets.length < 5 + i * 7) offsets.push(((await first.next()) as Delivery).offset);
        await first.close();
        const again = await client();
        const got = await join(again, "live", { offset: offsets.at(-1) ?? 0, epoch });
        expect(got.recovered).toBe(true);
        for (const m of got.missed ?? []) {
          expect(m.say).toBe(m.offset);
          offsets.push(m.offset);
        }
        while ((offsets.at(-1) ?? 0) < total) offsets.push(((await again.next()) as Delivery).offset);
        return offsets;
      }),
    );
    await publishing;
    const all = Array.from({ length: total }, (_, i) => i + 1);
    for (const offsets of seen) expect(offsets).toEqual(all);
  });

  it("trimmed history, another epoch, an offset past the newest, more than recoverMax: recovered false", async () => {
    await start({ historySize: 3, recoverMax: 2 });
    const a = await client();
    const { epoch } = await join(a, "room");
    await say(a, "room", 5); // keeps 3, 4, 5
    const refused = { joined: "room", recovered: false, epoch, offset: 5 };
    expect(await join(a, "room", { offset: 1, epoch })).toEqual(refused); // 2 is gone
    expect(await join(a, "room", { offset: 2, epoch })).toEqual(refused); // 3 missed, recoverMax 2
    expect(await join(a, "room", { offset: 4, epoch: "another" })).toEqual(refused);
    expect(await join(a, "room", { offset: 6, epoch })).toEqual(refused);
    expect(await join(a, "room", { offset: 3, epoch })).toMatchObject({
      recovered: true,
      offset: 5,
      missed: [{ offset: 4 }, { offset: 5 }],
    });
    a.send({ say: 6, to: "room" });
    expect(await a.next()).toMatchObject({ say: 6, offset: 6 }); // a member already: nothing twice
  });

  it("expired history (historyTtl): recovered false in a new epoch", async () => {
    await start({ historyTtl: 1 });
    const a = await client();
    const { epoch } = await join(a, "room");
    await say(a, "room", 2);
    const b = await client();
    let got: Joined | undefined;
    const expired = async (): Promise<boolean> => {
      got = await join(b, "room", { offset: 1, epoch });
      return got.recovered === false;
    };
    await until(expired, "the history to expire", 5000);
    expect(got).toEqual({ joined: "room", recovered: false, epoch: expect.not.stringMatching(`^${epoch}$`), offset: 0 });
  });

  it("a skipped slow consumer recovers what it was not sent", async () => {
    await start({ historySize: 2000, highWaterMark: 16 * 1024 });
    const slow = await client();
    const { epoch } = await join(slow, "room");
    const publisher = await client();
    await join(publisher, "room");
    const socket = (slow.ws as WebSocket & { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const big = "x".repeat(32 * 1024);
    let sent = 0;
    while (fixture.server.channels.stats().dropped === 0 && sent < 1500) {
      publisher.send({ say: big, to: "room" });
      while (((await publisher.next()) as Delivery).offset !== sent + 1);
      sent++;
    }
    expect(fixture.server.channels.stats().dropped).toBeGreaterThan(0);
    await say(publisher, "room", 3, sent + 1); // skipped too, or not: either way recovered below
    socket.resume();
    const [member] = fixture.server.channels.reduce("room", [] as unknown[], (all, { member }) => [...all, member]);
    await eventually(() => (member as WebSocket).bufferedAmount === 0, "the slow consumer to drain");
    slow.send({ leave: "none" }); // its reply comes after every say the server wrote to it
    const offsets: number[] = [];
    for (let m = (await slow.next()) as Delivery & { left?: string }; m.left === undefined; m = (await slow.next()) as never) {
      offsets.push(m.offset);
    }
    let contiguous = 0;
    while (offsets[contiguous] === contiguous + 1) contiguous++;
    expect(contiguous).toBeLessThan(sent + 3); // it did miss some
    const got = await join(slow, "room", { offset: contiguous, epoch });
    expect(got.recovered).toBe(true);
    expect(got.missed?.map((m) => m.offset)).toEqual(Array.from({ length: sent + 3 - contiguous }, (_, i) => contiguous + i + 1));
  });

  it("off by default: says carry no offset and a recover is a plain join", async () => {
    await start({ historySize: 0 });
    const a = await client();
    expect(await join(a, "room", { offset: 3, epoch: "e" })).toEqual({ joined: "room" });
    a.send({ say: 1, to: "room" });
    expect(await a.next()).toEqual({ to: "room", say: 1 });
  });

  it("a bad history setting throws, and a bad recover closes 3000", async () => {
    await expect(start({ historySize: -1 })).rejects.toThrow(RangeError);
    await start();
    const a = await client();
    a.send({ join: "room", recover: { offset: -1, epoch: "e" } });
    expect((await a.closedBy()).code).toBe(3000);
  });
});
