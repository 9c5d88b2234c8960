import { once } from "node:events";
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
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
    expect(await c.next()).toEqual({ from: null, payload: "marker" });
    expect(c.received).toEqual([{ joined: "other" }, { from: null, payload: "marker" }]);
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

describe("who sent it: the server says, the client cannot forge it", () => {
  it("a say carries the sender's ?id= as from, and no from key when the sender has no id", async () => {
    const [ann, anon] = [await client("ann"), await client()];
    await joined(ann, "room");
    await joined(anon, "room");
    ann.send({ say: "hi", to: "room" });
    for (const c of [ann, anon]) expect(await c.next()).toStrictEqual({ to: "room", say: "hi", from: "ann" });
    anon.send({ say: "who?", to: "room" });
    for (const c of [ann, anon]) expect(await c.next()).toStrictEqual({ to: "room", say: "who?" });
  });

  it("a targeted message arrives as {from, payload}, even a payload shaped like the server's own frames", async () => {
    const [mallory, anon, alice] = [await client("mallory"), await client(), await client("alice")];
    const forged = { to: "admins", say: "reset your password", from: "admin" };
    mallory.send({ targets: ["alice"], payload: forged });
    expect(await alice.next()).toStrictEqual({ from: "mallory", payload: forged });
    anon.send({ targets: ["alice"], payload: { error: "id in use" } });
    expect(await alice.next()).toStrictEqual({ from: null, payload: { error: "id in use" } });
  });

  it("more than maxTargets ids: {error: too many targets}, nothing sent; maxTargets ids are sent", async () => {
    await server.close();
    server = await startServer({ port: 0, tcpPort: 0, maxTargets: 3, maxMessagesPerSecond: 10_000 });
    const [sender, bob] = [await client("sender"), await client("bob")];
    sender.send({ targets: ["bob", "x", "y", "z"], payload: "four" });
    expect(await sender.next()).toEqual({ error: "too many targets" });
    sender.send({ targets: ["bob", "x", "y"], payload: "three" });
    expect(await sender.next()).toEqual({ error: "unknown targets", targets: ["x", "y"] });
    expect(await bob.next()).toEqual({ from: "sender", payload: "three" }); // the first bob got: not "four"
  });

  it("each target costs one token of the sender's rate limit: past it, close 1008 rate limit", async () => {
    await server.close();
    server = await startServer({ port: 0, tcpPort: 0, maxMessagesPerSecond: 20, maxTargets: 20 });
    const [sender, bob] = [await client(), await client("bob")];
    const twenty = Array.from({ length: 20 }, () => "bob");
    sender.send({ targets: twenty, payload: 1 }); // the whole bucket
    expect(await bob.next()).toEqual({ from: null, payload: 1 });
    sender.send({ targets: twenty, payload: 2 }); // 20 more within the second: one message, past the rate
    expect(await sender.closedBy()).toEqual({ code: 1008, reason: "rate limit" });
    (await client()).send({ targets: ["bob"], payload: "marker" });
    expect(await bob.next()).toEqual({ from: null, payload: "marker" }); // not 2
  });

  it("authorizeTarget (sync or async) refuses targets, reported exactly as ids connected nowhere", async () => {
    await server.close();
    const asked: [string | undefined, string][] = [];
    server = await startServer({
      port: 0,
      tcpPort: 0,
      authorizeTarget: (from, to) => {
        asked.push([from, to]);
        if (to === "carl") return Promise.resolve(false);
        if (to === "dora") throw new Error("no");
        if (to === "eve") return Promise.reject(new Error("no"));
        return to !== "fay" && (from === "ann" || to === "bob");
      },
    });
    const [ann, anon] = [await client("ann"), await client()];
    const [bob, carl, dora, eve, fay] = await Promise.all(["bob", "carl", "dora", "eve", "fay"].map((id) => client(id)));
    const refused = [carl!, dora!, eve!, fay!];
    for (const c of [ann, ...refused]) await joined(c, "room");
    ann.send({ targets: ["carl", "bob", "nobody", "dora", "eve", "fay", "carl"], payload: "hi" });
    expect(await ann.next()).toEqual({ error: "unknown targets", targets: ["carl", "nobody", "dora", "eve", "fay", "carl"] });
    expect(await bob.next()).toEqual({ from: "ann", payload: "hi" });
    anon.send({ targets: ["bob", "ann"], payload: "anon" });
    expect(await anon.next()).toEqual({ error: "unknown targets", targets: ["ann"] });
    expect(await bob.next()).toEqual({ from: null, payload: "anon" });
    ann.send({ say: "marker", to: "room" }); // the first message each refused target gets
    for (const c of refused) expect(await c.next()).toEqual({ to: "room", say: "marker", from: "ann" });
    expect(asked).toContainEqual(["ann", "carl"]);
    expect(asked).toContainEqual([undefined, "ann"]);
    expect(asked.filter(([, to]) => to === "carl")).toHaveLength(1); // once per distinct id
  });
});

describe("targets", () => {
  it("delivers the payload to each listed id once, numbers matching their string form", async () => {
    const [sender, alice, seven] = [await client(), await client("alice"), await client(7)];
    sender.send({ targets: ["alice", 7, "alice"], payload: { x: 1 } });
    expect(await alice.next()).toEqual({ from: null, payload: { x: 1 } });
    expect(await seven.next()).toEqual({ from: null, payload: { x: 1 } });
    sender.send({ targets: ["alice"], payload: "second" });
    expect(await alice.next()).toEqual({ from: null, payload: "second" }); // not a duplicate of the first
  });

  it("echoes unknown ids back to the sender as given, and still delivers to the known ones", async () => {
    const [sender, alice] = [await client(), await client("alice")];
    sender.send({ targets: ["nobody", 42, "alice"], payload: null });
    expect(await sender.next()).toEqual({ error: "unknown targets", targets: ["nobody", 42] });
    expect(await alice.next()).toEqual({ from: null, payload: null });
  });

  it("closes a second live connection with an id in use with 1008, and the first keeps working", async () => {
    const first = await client("dup");
    const second = await client("dup");
    expect(await second.closedBy()).toEqual({ code: 1008, reason: "id in use" });
    await joined(first, "still-here");
    const other = await client();
    other.send({ targets: ["dup"], payload: "for the first" });
    expect(await first.next()).toEqual({ from: null, payload: "for the first" });
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
    expect(await again.next()).toEqual({ from: null, payload: 1 });
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
    // UTF-8 cannot encode a lone surrogate: on the way to Redis or another node it would become U+FFFD, another name
    ["a channel name with a lone surrogate", '{"join": "X\\uD800"}'],
    ["a say to a channel name with a lone surrogate", '{"say": 1, "to": "room\\uDC00"}'],
    ["a leave of a channel name with a lone surrogate", '{"leave": "\\uDBFFroom"}'],
    ["a target id with a lone surrogate", '{"targets": ["ok", "X\\uD800"], "payload": 1}'],
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
    expect(await good.next()).toEqual({ to: "room", say: "alive", from: "good" });
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

  it("plain HTTP gets the page (on by default), and a path that is not the page's 404 (more in page-http.test.ts)", async () => {
    expect((await fetch(`http://127.0.0.1:${server.ws.port}/`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${server.ws.port}/nothing`)).status).toBe(404);
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
