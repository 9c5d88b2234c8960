import { describe, expect, it } from "vitest";
import { serverPerTest, WsClient } from "./helpers.js";

const fixture = serverPerTest({ port: 0, tcpPort: false, maxMessagesPerSecond: 10_000 });

const start = fixture.start;

async function client(id?: string): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${fixture.server.ws.port}/${id === undefined ? "" : `?id=${id}`}`);
  return fixture.closeAfter(c);
}

describe('"req": a client\'s tag, echoed in the reply', () => {
  it("comes back on joined and left, a string or a number as sent", async () => {
    await start();
    const c = await client();
    c.send({ join: "room", req: "j1" });
    c.send({ req: 42, leave: "room" });
    c.send({ join: "room", req: -1.5e-7 });
    c.send({ join: "room", req: "" });
    expect([await c.next(), await c.next(), await c.next(), await c.next()]).toEqual([
      { joined: "room", req: "j1" },
      { left: "room", req: 42 },
      { joined: "room", req: -1.5e-7 },
      { joined: "room", req: "" },
    ]);
  });

  it("comes back on each error reply: forbidden, too many channels, too many targets, unknown targets", async () => {
    await start({ authorize: (channel) => channel !== "secret", maxChannelsPerConnection: 1, maxTargets: 2 });
    const c = await client("c");
    c.send({ join: "secret", req: 1 });
    c.send({ join: "one", req: 2 });
    c.send({ join: "two", req: 3 });
    c.send({ targets: ["a", "b", "c"], payload: "x", req: 4 });
    c.send({ targets: ["nobody", "c"], payload: "x", req: "t" });
    const replies = [await c.next(), await c.next(), await c.next(), await c.next(), await c.next(), await c.next()];
    expect(replies).toEqual([
      { error: "forbidden", join: "secret", req: 1 },
      { joined: "one", req: 2 },
      { error: "too many channels", join: "two", req: 3 },
      { error: "too many targets", req: 4 },
      { from: "c", payload: "x" }, // what c sent itself carries no req: it is not a reply
      { error: "unknown targets", targets: ["nobody"], req: "t" },
    ]);
  });

  it("a say carries it nowhere, and a message without req gets a reply without one", async () => {
    await start();
    const [a, b] = [await client(), await client()];
    for (const c of [a, b]) {
      c.send({ join: "room" });
      expect(await c.next()).toEqual({ joined: "room" });
    }
    a.send({ say: "hi", to: "room", req: "s1" });
    a.send({ leave: "room" });
    expect([await a.next(), await a.next()]).toEqual([{ to: "room", say: "hi" }, { left: "room" }]);
    expect(await b.next()).toEqual({ to: "room", say: "hi" });
  });

  it("at most 64 characters, counted in code points", async () => {
    await start();
    const c = await client();
    c.send({ join: "room", req: "😀".repeat(64) }); // 128 UTF-16 units
    expect(await c.next()).toEqual({ joined: "room", req: "😀".repeat(64) });
  });

  it.each([
    ["a string of 65 characters", `{"join": "room", "req": "${"x".repeat(65)}"}`],
    ["65 emoji", JSON.stringify({ join: "room", req: "😀".repeat(65) })],
    ["an object", '{"join": "room", "req": {"id": 1}}'],
    ["an array", '{"join": "room", "req": [1]}'],
    ["null", '{"join": "room", "req": null}'],
    ["a boolean", '{"join": "room", "req": true}'],
    ["a number JSON cannot hold (1e400)", '{"join": "room", "req": 1e400}'],
    ["alone, with no command", '{"req": 1}'],
    ["next to an unknown key", '{"join": "room", "req": 1, "id": 2}'],
    ["next to a refresh that is not a string", '{"refresh": 5, "req": 1}'],
  ])("%s: close 3000 invalid payload", async (_, frame) => {
    await start();
    const c = await client();
    c.ws.send(frame);
    expect(await c.closedBy()).toEqual({ code: 3000, reason: "invalid payload" });
  });

  it("a refresh on a server without authentication is answered refresh unsupported", async () => {
    await start();
    const c = await client();
    c.send({ refresh: "a.b.c", req: 7 });
    c.send({ refresh: "" });
    expect([await c.next(), await c.next()]).toEqual([{ error: "refresh unsupported", req: 7 }, { error: "refresh unsupported" }]);
    c.send({ join: "room" }); // still open
    expect(await c.next()).toEqual({ joined: "room" });
  });
});

describe('{"ping": N}: answered {"pong": N}', () => {
  it("echoes a number or a string, in order with the other replies, and a req beside it", async () => {
    await start();
    const c = await client("ann");
    c.send({ ping: 1 });
    c.send({ join: "room" });
    c.send({ ping: "two" });
    c.send({ ping: 3, req: "r" });
    expect([await c.next(), await c.next(), await c.next(), await c.next()]).toEqual([
      { pong: 1 },
      { joined: "room" },
      { pong: "two" },
      { pong: 3, req: "r" },
    ]);
  });

  it.each([
    ["null", '{"ping": null}'],
    ["an object", '{"ping": {}}'],
    ["a string of 65 characters", `{"ping": "${"x".repeat(65)}"}`],
    ["an extra key", '{"ping": 1, "to": "room"}'],
  ])("closes 3000 invalid payload for %s", async (_, text) => {
    await start();
    const c = await client();
    c.ws.send(text);
    expect(await c.closedBy()).toEqual({ code: 3000, reason: "invalid payload" });
  });
});
