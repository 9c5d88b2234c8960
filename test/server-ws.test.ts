import { once } from "node:events";
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../src/server/server.js";
import { eventually, WsClient, within } from "./helpers.js";

let server: RunningServer;
const clients: WsClient[] = [];

beforeEach(async () => {
  server = await startServer({ port: 0, tcpPort: 0, maxFrameSize: 1024, maxChannelLength: 16, maxMessagesPerSecond: 10_000 });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
});

async function client(id?: string | number): Promise<WsClient> {
  const query = id === undefined ? "" : `?id=${encodeURIComponent(id)}`;
  const c = await WsClient.open(`ws://127.0.0.1:${server.ws.port}/${query}`);
  clients.push(c);
  return c;
}

async function joined(c: WsClient, channel: string): Promise<void> {
  c.send({ join: channel });
  expect(await c.next()).toEqual({ joined: channel });
}

describe("join, leave, say", () => {
  it("answers joined and left, and leaving twice is fine", async () => {
    const a = await client();
    await joined(a, "room");
    expect(server.channels.count("room")).toBe(1);
    a.send({ leave: "room" });
    a.send({ leave: "room" });
    expect(await a.next()).toEqual({ left: "room" });
    expect(await a.next()).toEqual({ left: "room" });
    expect(server.channels.count("room")).toBe(0);
  });

  it("say reaches every member, the sender too, and no non-member", async () => {
    const [a, b, c] = [await client(), await client(), await client("c")];
    await joined(a, "room");
    await joined(b, "room");
    await joined(c, "other");
    a.send({ say: { text: "hi", n: [1, 2] }, to: "room" });
    expect(await a.next()).toEqual({ to: "room", say: { text: "hi", n: [1, 2] } });
    expect(await b.next()).toEqual({ to: "room", say: { text: "hi", n: [1, 2] } });
    b.send({ targets: ["c"], payload: "marker" }); // c's next message proves it got no say
    expect(await c.next()).toBe("marker");
    expect(c.received).toEqual([{ joined: "other" }, "marker"]);
  });

  it("answers join, say, leave sent back to back in that order", async () => {
    const a = await client();
    a.send({ join: "fast" });
    a.send({ say: "one", to: "fast" });
    a.send({ leave: "fast" });
    a.send({ join: "fast" });
    expect([await a.next(), await a.next(), await a.next(), await a.next()]).toEqual([
      { joined: "fast" },
      { to: "fast", say: "one" },
      { left: "fast" },
      { joined: "fast" },
    ]);
  });

  it("keeps every member's order over 300 says from several senders", async () => {
    const members = [await client(), await client(), await client()];
    for (const m of members) await joined(m, "load");
    for (let i = 0; i < 100; i++)
      members.forEach((m, k) => {
        m.send({ say: [k, i], to: "load" });
      });
    for (const m of members) {
      const got: [number, number][] = [];
      for (let i = 0; i < 300; i++) got.push(((await m.next()) as { say: [number, number] }).say);
      for (let k = 0; k < 3; k++) {
        expect(got.filter(([from]) => from === k).map(([, i]) => i)).toEqual([...Array(100).keys()]);
      }
    }
  });
});

describe("targets", () => {
  it("delivers the payload to each listed id once, numbers matching their string form", async () => {
    const [sender, alice, seven] = [await client(), await client("alice"), await client(7)];
    sender.send({ targets: ["alice", 7, "alice"], payload: { x: 1 } });
    expect(await alice.next()).toEqual({ x: 1 });
    expect(await seven.next()).toEqual({ x: 1 });
    sender.send({ targets: ["alice"], payload: "second" });
    expect(await alice.next()).toBe("second"); // not a duplicate of the first
  });

  it("echoes unknown ids back to the sender as given, and still delivers to the known ones", async () => {
    const [sender, alice] = [await client(), await client("alice")];
    sender.send({ targets: ["nobody", 42, "alice"], payload: null });
    expect(await sender.next()).toEqual({ error: "unknown targets", targets: ["nobody", 42] });
    expect(await alice.next()).toBeNull();
  });

  it("closes a second live connection with an id in use with 1008, and the first keeps working", async () => {
    const first = await client("dup");
    const second = await client("dup");
    expect(await second.closedBy()).toEqual({ code: 1008, reason: "id in use" });
    await joined(first, "still-here");
    const other = await client();
    other.send({ targets: ["dup"], payload: "for the first" });
    expect(await first.next()).toBe("for the first");
  });

  it("frees an id when its connection closes", async () => {
    const first = await client("reuse");
    await joined(first, "room");
    await first.close();
    // the server forgets the id on the same close event that makes it leave its channels
    await eventually(() => server.channels.count("room") === 0, "the server to see the close");
    const again = await client("reuse");
    const other = await client();
    other.send({ targets: ["reuse"], payload: 1 });
    expect(await again.next()).toBe(1);
  });
});

describe("bad input closes only the sender, with the documented code", () => {
  const invalid: [string, string | Buffer][] = [
    ["not JSON", "{join"],
    ["a JSON string", '"join"'],
    ["an array", '["join", "a"]'],
    ["null", "null"],
    ["a number channel", '{"join": 5}'],
    ["an empty channel name", '{"join": ""}'],
    ["a channel name over the limit", JSON.stringify({ join: "x".repeat(17) })],
    ["an extra key", '{"join": "a", "x": 1}'],
    ["say without to", '{"say": "x"}'],
    ["targets that is not an array", '{"targets": "alice", "payload": 1}'],
    ["a target that is an object", '{"targets": [{}], "payload": 1}'],
    ["targets without payload", '{"targets": ["a"]}'],
    ["a binary frame", Buffer.from('{"join": "a"}')],
  ];
  for (const [what, frame] of invalid) {
    it(`${what}: close 3000 invalid payload`, async () => {
      const [bad, good] = [await client(), await client()];
      await joined(bad, "room");
      await joined(good, "room");
      bad.ws.send(frame);
      expect(await bad.closedBy()).toEqual({ code: 3000, reason: "invalid payload" });
      good.send({ say: "after", to: "room" });
      expect(await good.next()).toEqual({ to: "room", say: "after" });
      expect(server.channels.count("room")).toBe(1);
    });
  }

  it("a channel name of exactly the limit, counted in characters, is accepted", async () => {
    const a = await client();
    await joined(a, "é".repeat(16));
    await joined(a, "😀".repeat(16)); // 32 UTF-16 units, 16 characters
  });

  it("say to a channel one is not in: close 3000 cannot send to channel", async () => {
    const a = await client();
    a.send({ say: "x", to: "elsewhere" });
    expect(await a.closedBy()).toEqual({ code: 3000, reason: "cannot send to channel" });
  });

  it("a text frame that is not valid UTF-8: close 1007 from ws", async () => {
    const a = await client();
    a.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await a.closedBy()).code).toBe(1007);
  });

  it("a message over the frame size limit: close 1009 from ws", async () => {
    const a = await client();
    a.send({ say: "x".repeat(2000), to: "room" });
    expect((await a.closedBy()).code).toBe(1009);
  });
});

describe("hostile input does not take the server down", () => {
  const deep = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);

  it("a payload nested too deep to re-encode: close 3000 invalid payload, for targets and say, queued or not", async () => {
    await server.close();
    server = await startServer({ port: 0, tcpPort: 0 }); // the default 64 KiB frames: room to nest
    const good = await client("good");
    await joined(good, "room");
    for (const frame of [`{"targets": ["good"], "payload": ${deep(10_000)}}`, `{"say": ${deep(10_000)}, "to": "room"}`]) {
      const bad = await client();
      await joined(bad, "room");
      bad.send({ say: "first", to: "room" }); // the next message waits behind this broadcast
      bad.ws.send(frame);
      expect(await bad.closedBy()).toEqual({ code: 3000, reason: "invalid payload" });
      expect(await good.next()).toEqual({ to: "room", say: "first" });
    }
    good.send({ say: "alive", to: "room" });
    expect(await good.next()).toEqual({ to: "room", say: "alive" });
  });

  it("malformed upgrade request targets are answered or dropped, and the server keeps serving", async () => {
    for (const target of ["http://[/", "//[::1", "http://a:b/", "/?id=%zz"]) {
      const socket = connect(server.ws.port, "127.0.0.1");
      socket.on("error", () => undefined);
      socket.resume(); // read, so that the server's FIN is seen
      await within(once(socket, "connect"), "connect");
      socket.end(
        `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
      await within(once(socket, "close"), `the server to finish with ${target}`);
    }
    const a = await client();
    await joined(a, "still-up");
  });

  it("plain HTTP gets 426 Upgrade Required", async () => {
    const response = await fetch(`http://127.0.0.1:${server.ws.port}/`);
    expect(response.status).toBe(426);
  });
});

describe("disconnects", () => {
  it("a client that closes or drops leaves its channels and frees its id", async () => {
    const [polite, abrupt] = [await client("p"), await client("q")];
    for (const c of [polite, abrupt]) {
      await joined(c, "one");
      await joined(c, "two");
    }
    await polite.close();
    abrupt.ws.terminate();
    await eventually(() => server.channels.stats().memberships === 0, "both to leave");
    expect(server.channels.stats()).toMatchObject({ channels: 0, members: 0, memberships: 0 });
    const sender = await client();
    sender.send({ targets: ["p", "q"], payload: 0 });
    expect(await sender.next()).toEqual({ error: "unknown targets", targets: ["p", "q"] });
  });

  it("server close sends 1001 to every client", async () => {
    const a = await client();
    await joined(a, "room");
    await server.close();
    expect(await a.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
  });

  it("server close stops accepting at once, so a client arriving during shutdown cannot hold it open", async () => {
    const a = await client();
    const closing = server.close();
    const late = await WsClient.open(`ws://127.0.0.1:${server.ws.port}/`).then(
      (c) => {
        clients.push(c);
        return "opened";
      },
      () => "refused",
    );
    expect(late).toBe("refused");
    await within(closing, "the server to close");
    expect((await a.closedBy()).code).toBe(1001);
  });
});
