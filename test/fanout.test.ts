import { afterEach, describe, expect, it, vi } from "vitest";
import type WebSocket from "ws";
import * as wsModule from "ws";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { Channels } from "../packages/ws-channels/src/index.js";
import { type Cleanups, eventually, WsClient, within, wsPairs } from "./helpers.js";

const Sender = (wsModule as unknown as { Sender: { frame: (...args: unknown[]) => unknown } }).Sender;

const cleanups: Cleanups = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A member whose send costs about `us` microseconds of CPU, like a real socket write. */
class BusyMember {
  static sent = 0;
  constructor(readonly us: number) {}
  send(): void {
    const end = performance.now() + this.us / 1000;
    while (performance.now() < end);
    BusyMember.sent++;
  }
}

describe("batching: one write per socket per turn", () => {
  it("broadcasts and direct sends made in one turn leave a socket as one writev, in call order", async () => {
    const { server, clients } = await wsPairs(2, cleanups);
    const channels = new Channels({ sharder: () => 4 });
    for (const ws of server) channels.join("room", ws);
    const sockets = server.map((ws) => (ws as unknown as { _socket: { _writev: unknown; _write: unknown } })._socket);
    const writev = sockets.map((s) => vi.spyOn(s as { _writev: () => void }, "_writev"));
    const write = sockets.map((s) => vi.spyOn(s as { _write: () => void }, "_write"));
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      sent.push(channels.broadcast("room", `b${i}`));
      if (i === 3) sent.push(channels.send(server[0]!, "direct"));
    }
    await Promise.all(sent);
    await new Promise((resolve) => setImmediate(resolve)); // the turn ends: uncorked
    // One write each: a writev of several buffers, or one buffer when a whole batch was joined.
    for (let i = 0; i < sockets.length; i++) expect(writev[i]!.mock.calls.length + write[i]!.mock.calls.length).toBe(1);
    expect(writev[0]).toHaveBeenCalledTimes(1); // batch, the direct send, batch
    const expected = ["b0", "b1", "b2", "b3", "direct", "b4", "b5", "b6", "b7"];
    const got = [];
    for (let i = 0; i < expected.length; i++) got.push(String((await clients[0]!.nextRaw()).data));
    expect(got).toEqual(expected);
  });
});

describe("a batch written as one buffer", () => {
  it("frames each message once and writes a member the whole batch in one write; a member some broadcast skips gets its messages one by one", async () => {
    const { server, clients } = await wsPairs(3, cleanups);
    const channels = new Channels({ sharder: () => 2 }); // two shards: queued, so the turn's broadcasts form one batch per shard
    for (const ws of server) channels.join("room", ws);
    const writes = server.map((ws) => vi.spyOn((ws as unknown as { _socket: { write: () => boolean } })._socket, "write"));
    const frame = vi.spyOn(Sender, "frame");
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < 6; i++) sent.push(channels.broadcast("room", `m${i}`, i === 2 ? { except: server[1]! } : {}));
    const results = await Promise.all(sent);
    expect(results.map((r) => (r as { delivered: number }).delivered)).toEqual([3, 3, 2, 3, 3, 3]);
    expect(frame).toHaveBeenCalledTimes(6);
    expect(writes.map((spy) => spy.mock.calls.length)).toEqual([1, 5, 1]);
    const expected = ["m0", "m1", "m2", "m3", "m4", "m5"];
    for (const [i, client] of clients.entries()) {
      const want = i === 1 ? expected.filter((m) => m !== "m2") : expected;
      const got = [];
      for (let k = 0; k < want.length; k++) got.push(String((await client.nextRaw()).data));
      expect(got).toEqual(want);
    }
  });

  it("a member the batch would take over the high-water mark gets it message by message, as each fits", async () => {
    const { server, clients } = await wsPairs(3, cleanups);
    const channels = new Channels({ sharder: () => 2, highWaterMark: 1000 });
    for (const ws of server) channels.join("room", ws);
    const unsent = [0, 998, 5000]; // a reader, one just under the mark, one that stopped reading
    for (const [i, bytes] of unsent.entries()) Object.defineProperty(server[i]!, "bufferedAmount", { get: () => bytes });
    const writes = server.map((ws) => vi.spyOn((ws as unknown as { _socket: { write: () => boolean } })._socket, "write"));
    const results = await Promise.all([channels.broadcast("room", "a"), channels.broadcast("room", "b")]);
    expect(results).toEqual([
      { delivered: 2, failed: 0, dropped: 1 },
      { delivered: 2, failed: 0, dropped: 1 },
    ]);
    expect(writes.map((spy) => spy.mock.calls.length)).toEqual([1, 2, 0]);
    expect(channels.channelsOf(server[2]!)).toEqual(["room"]); // skip: it stays
    for (const client of clients.slice(0, 2)) {
      expect(String((await client.nextRaw()).data)).toBe("a");
      expect(String((await client.nextRaw()).data)).toBe("b");
    }
  });
});

describe("order under slicing", () => {
  it("holds per member with 16 shards, direct sends in between, and broadcasts to two channels", async () => {
    const { server, clients } = await wsPairs(12, cleanups);
    // A tiny budget and busy filler members make every broadcast span several turns.
    const channels = new Channels({ sharder: () => 16, sliceMs: 0.05, writers: 2, maxWriters: 4 });
    for (let i = 0; i < 2000; i++) {
      const filler = new BusyMember(1);
      channels.join("a", filler);
      channels.join("b", filler);
    }
    for (const ws of server) {
      channels.join("a", ws);
      channels.join("b", ws);
    }
    const calls: string[] = [];
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      calls.push(`a${i}`);
      pending.push(channels.broadcast("a", `a${i}`));
      if (i % 3 === 0) {
        calls.push(`t${i}`);
        pending.push(channels.send(server[i % server.length]!, `t${i}`));
      }
      calls.push(`b${i}`);
      pending.push(channels.broadcast("b", `b${i}`));
      if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve)); // calls spread over turns
    }
    await within(Promise.all(pending), "every broadcast", 20_000);
    for (const [k, client] of clients.entries()) {
      const mine = calls.filter((c) => c[0] !== "t" || Number(c.slice(1)) % server.length === k);
      const got: string[] = [];
      for (let i = 0; i < mine.length; i++) got.push(String((await client.nextRaw()).data));
      expect([...got].sort()).toEqual([...mine].sort()); // each exactly once
      for (const channel of ["a", "b"]) {
        expect(got.filter((m) => m[0] === channel)).toEqual(mine.filter((m) => m[0] === channel));
      }
      for (const direct of got.filter((m) => m[0] === "t")) {
        // a direct send comes after every broadcast called before it, before every one called after
        const at = got.indexOf(direct);
        const calledAt = calls.indexOf(direct);
        for (const other of got) {
          if (other[0] === "t") continue;
          expect(got.indexOf(other) < at, `${other} vs ${direct}`).toBe(calls.indexOf(other) < calledAt);
        }
      }
    }
  });
});

describe("membership changes during a sliced fan-out", () => {
  it("skips who left, and who joined or joined again while it was paused: nobody gets it twice", async () => {
    class Counted extends BusyMember {
      got = 0;
      override send(): void {
        super.send();
        this.got++;
      }
    }
    const channels = new Channels({ sliceMs: 0.05 });
    const members = Array.from({ length: 3000 }, () => new Counted(1));
    for (const m of members) channels.join("room", m);
    const broadcast = channels.broadcast("room", "x");
    await new Promise((resolve) => setImmediate(resolve)); // the first slice has run; the rest waits
    const left = members.slice(-100);
    const rejoined = members.slice(-200, -100);
    const newcomers = Array.from({ length: 50 }, () => new Counted(1));
    for (const m of left) channels.leave("room", m);
    for (const m of rejoined) {
      channels.leave("room", m);
      channels.join("room", m);
    }
    for (const m of newcomers) channels.join("room", m);
    const visited = members.slice(0, 50); // written in the first slice (at least 256), then leave and join again
    for (const m of visited) {
      channels.leave("room", m);
      channels.join("room", m);
    }
    const result = await within(broadcast, "the broadcast", 20_000);
    expect(left.map((m) => m.got)).toEqual(left.map(() => 0));
    expect(rejoined.map((m) => m.got)).toEqual(rejoined.map(() => 0)); // left during the broadcast
    expect(visited.map((m) => m.got)).toEqual(visited.map(() => 1)); // not twice
    expect(newcomers.map((m) => m.got)).toEqual(newcomers.map(() => 0));
    expect(members.slice(0, -200).every((m) => m.got === 1)).toBe(true);
    expect(result.delivered).toBe(2800);
  });
});

describe("bounded slices", () => {
  it("writes at most a few hundred messages between two turns, however many broadcasts are queued", async () => {
    const channels = new Channels({ sliceMs: 0.001 }); // every look at the clock finds the budget spent
    const sendsPerTurn: number[] = [0];
    let ticking = true;
    const tick = (): void => {
      sendsPerTurn.push(0);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    for (let i = 0; i < 2000; i++) channels.join("room", { send: () => void sendsPerTurn[sendsPerTurn.length - 1]!++ });
    const all = Array.from({ length: 300 }, (_, i) => channels.broadcast("room", String(i)));
    await within(Promise.all(all), "300 broadcasts", 20_000);
    ticking = false;
    expect(sendsPerTurn.reduce((a, b) => a + b, 0)).toBe(600_000);
    // 256 writes per look at the clock, plus the rest of a member's batch (at most 64), two slices
    // at most in one turn: without the batch cap and write counting this is 256 x 300 = 76,800.
    expect(Math.max(...sendsPerTurn)).toBeLessThanOrEqual(2 * (256 + 64));
  });

  it("a paused fan-out ends while members keep leaving and joining again", async () => {
    const channels = new Channels({ sliceMs: 0.05 });
    const members = Array.from({ length: 3000 }, () => new BusyMember(1));
    for (const m of members) channels.join("room", m);
    let done = false;
    const broadcast = channels.broadcast("room", "x").then((r) => {
      done = true;
      return r;
    });
    let turns = 0;
    for (; !done && turns < 20_000; turns++) {
      for (const m of members.slice(0, 20)) {
        channels.leave("room", m);
        channels.join("room", m);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(done).toBe(true); // it did not chase the churned members to the end of the shard forever
    expect((await broadcast).delivered).toBeLessThanOrEqual(3000);
  });
});

describe("a responsive event loop", () => {
  it("a timer set before a 100,000-member broadcast fires before the broadcast finishes", async () => {
    const channels = new Channels({ sharder: () => 16 });
    for (let i = 0; i < 100_000; i++) channels.join("huge", new BusyMember(0.5));
    let finished = false;
    const fired = new Promise<boolean>((resolve) => setTimeout(() => resolve(finished), 0));
    const broadcast = channels.broadcast("huge", "x").then((result) => {
      finished = true;
      return result;
    });
    expect(await fired).toBe(false);
    expect(await within(broadcast, "the broadcast", 30_000)).toEqual({ delivered: 100_000, failed: 0, dropped: 0 });
  });

  it("another socket is read and answered while a large fan-out runs", async () => {
    const { server, clients } = await wsPairs(1, cleanups);
    server[0]!.on("message", (data) => server[0]!.send(`echo ${String(data)}`));
    const channels = new Channels();
    for (let i = 0; i < 100_000; i++) channels.join("huge", new BusyMember(0.5));
    let finished = false;
    const broadcast = channels.broadcast("huge", "x").then(() => (finished = true));
    clients[0]!.ws.send("ping");
    expect(String((await clients[0]!.nextRaw()).data)).toBe("echo ping");
    expect(finished).toBe(false);
    await within(broadcast, "the broadcast", 30_000);
  });
});

describe("send() and the slow-consumer rule", () => {
  it("a direct send to a member over the mark is refused, and under close closes it with 1013", async () => {
    const { server, clients } = await wsPairs(1, cleanups);
    const channels = new Channels({ highWaterMark: 16 * 1024, slowConsumer: "close" });
    channels.join("room", server[0]!);
    (clients[0]!.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let written = true;
    for (let i = 0; i < 2000 && written; i++) {
      written = await channels.send(server[0]!, Buffer.alloc(64 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(written).toBe(false);
    expect(server[0]!.bufferedAmount).toBeLessThanOrEqual(16 * 1024 + 64 * 1024 + 16); // the mark plus one message
    expect(channels.count("room")).toBe(0);
    (clients[0]!.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await within(clients[0]!.closed, "the 1013 close", 10_000)).code).toBe(1013);
  });
});

describe("the server keeps its replies ahead of its closes", () => {
  it("behind a paused fan-out, a reply still comes before the close an invalid frame causes", async () => {
    const running = await startServer({ port: 0, tcpPort: 0 });
    cleanups.push(() => running.close());
    for (let i = 0; i < 20_000; i++) running.channels.join("big", new BusyMember(1)); // ~20 ms of fan-out
    const client = await WsClient.open(`ws://127.0.0.1:${running.ws.port}/`);
    cleanups.push(() => client.close());
    client.send({ join: "big" });
    expect(await client.next()).toEqual({ joined: "big" });
    const fanOut = running.channels.broadcast("big", JSON.stringify({ to: "big", say: "slow one" }));
    client.send({ leave: "elsewhere" });
    client.ws.send("not json");
    expect(await client.next()).toEqual({ to: "big", say: "slow one" });
    expect(await client.next()).toEqual({ left: "elsewhere" });
    expect(await client.closedBy()).toEqual({ code: 3000, reason: "invalid payload" });
    await fanOut;
  });
});

describe("slow consumers, with a real client that stops reading", () => {
  let server: RunningServer;
  afterEach(() => server?.close());

  /** Three members of "room"; `slow` stops reading; `publisher` says `count` messages of `size` bytes. */
  async function flood(policy: "skip" | "close", count: number, size: number) {
    server = await startServer({ port: 0, tcpPort: 0, highWaterMark: 64 * 1024, slowConsumer: policy, maxMessagesPerSecond: 1e6 });
    const url = `ws://127.0.0.1:${server.ws.port}/`;
    const [publisher, reader, slow] = await Promise.all([WsClient.open(url), WsClient.open(url), WsClient.open(url)]);
    cleanups.push(() => Promise.all([publisher, reader, slow].map((c) => c.close())));
    for (const c of [publisher, reader, slow]) {
      c.send({ join: "room" });
      expect(await c.next()).toEqual({ joined: "room" });
    }
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const pad = "x".repeat(size);
    let peak = 0;
    for (let i = 0; i < count; i++) {
      publisher.send({ say: { i, pad }, to: "room" });
      if (i % 50 === 49) {
        // keep the publisher within 50 messages of the reader, as a paced producer would
        while (reader.received.length < i - 10) await new Promise((resolve) => setTimeout(resolve, 1));
        peak = Math.max(
          peak,
          server.channels.reduce("room", 0, (max, { member }) => Math.max(max, (member as WebSocket).bufferedAmount)),
        );
      }
    }
    for (const c of [publisher, reader]) {
      for (let i = 0; i < count; i++) expect(((await c.next()) as { say: { i: number } }).say.i).toBe(i);
    }
    return { slow, peak };
  }

  it("skip: the others get everything in order; the slow one is skipped, counted, and stays", async () => {
    const { slow, peak } = await flood("skip", 10_000, 1024);
    const { dropped } = server.channels.stats();
    expect(dropped).toBeGreaterThan(0);
    expect(server.channels.count("room")).toBe(3);
    expect(peak).toBeLessThanOrEqual(64 * 1024 + 1100); // the mark plus one message
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const seen: number[] = [];
    await eventually(() => slow.received.length === 10_000 + 1 - dropped, "the slow client to catch up");
    for (const m of slow.received.slice(1)) seen.push((m as { say: { i: number } }).say.i);
    expect(seen).toEqual([...seen].sort((x, y) => x - y)); // what it got, it got in order
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("close: the slow one is closed with 1013 and leaves; the others get everything", async () => {
    const { slow } = await flood("close", 10_000, 1024);
    expect(server.channels.count("room")).toBe(2);
    expect(server.channels.stats().dropped).toBeGreaterThan(0);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await within(slow.closed, "the 1013 close", 10_000)).toEqual({ code: 1013, reason: "slow consumer" });
  });
});
