import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, type ServerOptions, startServer } from "../packages/server/src/server.js";
import { WsClient } from "./helpers.js";

let server: RunningServer | undefined;
const clients: WsClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function start(options: ServerOptions): Promise<RunningServer> {
  server = await startServer({ port: 0, tcpPort: 0, ...options });
  return server;
}

async function client(query = ""): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${server!.ws.port}/${query}`);
  clients.push(c);
  return c;
}

describe("limits, each answered as documented", () => {
  it("channels per connection: a join past the limit gets {error: too many channels} and changes nothing", async () => {
    await start({ maxChannelsPerConnection: 2 });
    const a = await client();
    for (const channel of ["one", "two", "three", "one"]) a.send({ join: channel });
    expect([await a.next(), await a.next(), await a.next(), await a.next()]).toEqual([
      { joined: "one" },
      { joined: "two" },
      { error: "too many channels", join: "three" },
      { joined: "one" }, // joining a channel it is already in is not a new channel
    ]);
    const [member] = server!.channels.reduce("one", [] as unknown[], (acc, m) => [...acc, m.member]);
    expect(server!.channels.channelsOf(member as never)).toEqual(["one", "two"]);
    expect(server!.channels.count("three")).toBe(0);
  });

  it("connections per IP: one past the limit is closed 1008 too many connections; the others stay", async () => {
    await start({ maxConnectionsPerIp: 2 });
    const [a, b] = [await client(), await client()];
    const third = await client();
    expect(await third.closedBy()).toEqual({ code: 1008, reason: "too many connections" });
    a.send({ join: "room" });
    b.send({ join: "room" });
    expect([await a.next(), await b.next()]).toEqual([{ joined: "room" }, { joined: "room" }]);
    expect(server!.connections().connections).toBe(2);
  });

  it("messages per second: a client past the limit is closed 1008 rate limit; a paced one is not", async () => {
    await start({ maxMessagesPerSecond: 20 });
    const [fast, paced] = [await client(), await client()];
    fast.send({ join: "room" });
    paced.send({ join: "room" });
    await Promise.all([fast.next(), paced.next()]);
    for (let i = 0; i < 40; i++) fast.send({ leave: "nowhere" });
    expect(await fast.closedBy()).toEqual({ code: 1008, reason: "rate limit" });
    for (let i = 0; i < 5; i++) {
      paced.send({ say: i, to: "room" });
      expect(await paced.next()).toEqual({ to: "room", say: i });
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    expect(paced.ws.readyState).toBe(1);
  });
});

describe("authorize", () => {
  it("a refused join answers {error: forbidden, join} and changes nothing; an allowed one joins", async () => {
    const asked: [string, string | undefined][] = [];
    await start({
      authorize: async (channel, id) => {
        asked.push([channel, id]);
        await new Promise((resolve) => setTimeout(resolve, 5)); // an async check, a database say
        return !channel.startsWith("admin:") || id === "root";
      },
    });
    const [guest, root] = [await client("?id=guest"), await client("?id=root")];
    guest.send({ join: "admin:ops" });
    guest.send({ join: "lobby" });
    root.send({ join: "admin:ops" });
    expect([await guest.next(), await guest.next()]).toEqual([{ error: "forbidden", join: "admin:ops" }, { joined: "lobby" }]);
    expect(await root.next()).toEqual({ joined: "admin:ops" });
    expect(server!.channels.count("admin:ops")).toBe(1);
    guest.send({ say: "let me in", to: "admin:ops" });
    expect(await guest.closedBy()).toEqual({ code: 3000, reason: "cannot send to channel" });
    expect(asked).toContainEqual(["admin:ops", "guest"]);
  });

  it("a hook that throws or rejects refuses, and the server stays up", async () => {
    await start({
      authorize: (channel) =>
        channel === "sync"
          ? (() => {
              throw new Error("boom");
            })()
          : Promise.reject(new Error("down")),
    });
    const a = await client();
    a.send({ join: "sync" });
    a.send({ join: "async" });
    expect([await a.next(), await a.next()]).toEqual([
      { error: "forbidden", join: "sync" },
      { error: "forbidden", join: "async" },
    ]);
    expect(server!.channels.stats().memberships).toBe(0);
  });
});
