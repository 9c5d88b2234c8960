import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { Client, type ClientOptions, type ClientState, type Room, type RoomMessage } from "ws-channels/client";
import { jwtAuthenticator, type RunningServer, type ServerOptions, secretKey, startServer } from "../packages/server/src/server.js";
import { eventually, WsClient, within } from "./helpers.js";

/* The client against a real server (in this process, port 0) over real ws sockets. */

let server: RunningServer | undefined;
const clients: Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.close();
  server = undefined;
  vi.restoreAllMocks();
});

async function start(options: ServerOptions = {}): Promise<string> {
  server = await startServer({ port: 0, tcpPort: false, maxMessagesPerSecond: 10_000, ...options });
  return `ws://127.0.0.1:${server.ws.port}/`;
}

function client(url: string, options: ClientOptions = {}): Client {
  const made = new Client(url, { WebSocket, ...options });
  clients.push(made);
  return made;
}

/** Resolves at the client's next change to `state`. */
function reaches(c: Client, state: ClientState): Promise<unknown> {
  return within(new Promise((resolve) => c.on("state", (event) => event.state === state && resolve(event))), `state ${state}`);
}

/** Resolves at the room's next `joined`. */
function joined(room: Room): Promise<{ recovered: boolean; missed: readonly RoomMessage[] }> {
  return within(new Promise((resolve) => room.on("joined", resolve)), `${room.channel} joined`);
}

describe("Client against the server", () => {
  it("rejoins every room in the order first joined, after a drop", async () => {
    const url = await start();
    const c = client(url, { id: "ann" });
    const names = ["c", "a", "b", "d"];
    const rooms = names.map((name) => c.join(name));
    await Promise.all(rooms.map(joined));
    const order: string[] = [];
    for (const room of rooms) room.on("joined", () => order.push(room.channel));
    c.drop();
    await eventually(() => order.length === 4, "the four rejoins");
    expect(order).toEqual(names);
    await eventually(() => names.every((name) => server!.channels.count(name) === 1), "membership on the server");
  });

  it("says and targeted messages round-trip; send rejects naming unknown targets", async () => {
    const url = await start();
    const ann = client(url, { id: "ann" });
    const bob = client(url, { id: "bob" });
    const [annRoom, bobRoom] = [ann.join("lobby"), bob.join("lobby")];
    await Promise.all([joined(annRoom), joined(bobRoom)]);
    const heard = within(new Promise((resolve) => bobRoom.on("message", resolve)), "bob to hear ann");
    await annRoom.say({ text: "hi" });
    expect(await heard).toEqual({ say: { text: "hi" }, from: "ann" });
    const got = within(new Promise((resolve) => bob.on("message", resolve)), "bob's targeted message");
    await ann.send(["bob"], { ping: "you" });
    expect(await got).toEqual({ from: "ann", payload: { ping: "you" } });
    await expect(ann.send(["bob", "nobody"], 1)).rejects.toMatchObject({ message: "unknown targets", reply: { targets: ["nobody"] } });
  });

  it("recovers what it missed with history: missed says first, in order, then live ones, no gap or duplicate", async () => {
    const url = await start({ historySize: 100 });
    vi.spyOn(Math, "random").mockReturnValue(0.9); // ann retries after 450 ms: bob's says come first
    const ann = client(url, { id: "ann" });
    const bob = client(url, { id: "bob" });
    const annRoom = ann.join("news");
    const bobRoom = bob.join("news");
    await Promise.all([joined(annRoom), joined(bobRoom)]);
    const seen: RoomMessage[] = [];
    annRoom.on("message", (m) => seen.push(m));
    const bobHeard: unknown[] = [];
    bobRoom.on("message", (m) => bobHeard.push(m.say));
    await bobRoom.say(1);
    await eventually(() => seen.length === 1, "ann to hear 1");
    const back = joined(annRoom);
    ann.drop();
    for (const n of [2, 3, 4]) await bobRoom.say(n);
    await eventually(() => bobHeard.length === 4, "bob's own says");
    expect(await back).toMatchObject({ recovered: true, missed: [2, 3, 4].map((n) => ({ say: n, from: "bob", offset: n })) });
    await bobRoom.say(5);
    await eventually(() => seen.length === 5, "ann to hear 5");
    expect(seen.map((m) => [m.say, m.offset])).toEqual([1, 2, 3, 4, 5].map((n) => [n, n]));
  });

  it("keeps the member list across a reconnect, telling only real changes", async () => {
    const url = await start();
    const ann = client(url, { id: "ann" });
    const bob = client(url, { id: "bob" });
    const room = ann.join("ch", { presence: true });
    await joined(room);
    await joined(bob.join("ch"));
    await eventually(() => room.members().has("bob"), "ann to see bob");
    const changes: { joins: unknown[]; leaves: unknown[] }[] = [];
    room.on("presence", (change) => changes.push({ joins: change.joins.map((e) => e.id), leaves: change.leaves.map((e) => e.id) }));
    const back = joined(room);
    ann.drop();
    await back;
    await eventually(() => changes.length === 1, "the rejoin's change");
    // bob stayed: only ann's own entry changed (a new ref at the new join)
    expect(changes).toEqual([{ joins: ["ann"], leaves: ["ann"] }]);
    expect([...room.members().keys()].sort()).toEqual(["ann", "bob"]);
    expect(room.members().get("ann")?.size).toBe(1);
  });

  it("calls the token function before every attempt and sends the token as ?token=", async () => {
    const SECRET = "k".repeat(64);
    const url = await start({ authenticate: jwtAuthenticator(secretKey(SECRET)) });
    const sign = (sub: string): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
    let calls = 0;
    const c = client(url, { token: () => (++calls === 1 ? "not a jwt" : sign("ann")) });
    const room = c.join("lobby");
    await joined(room);
    expect(calls).toBe(2); // the first was refused (HTTP 401, seen as a close 1006)
    const said = within(new Promise((resolve) => room.on("message", resolve)), "ann's own say");
    await room.say("hi");
    expect(await said).toMatchObject({ from: "ann" });
  });

  it("stops a room refused as forbidden, and keeps the others", async () => {
    const url = await start({ authorize: (channel) => channel !== "secret" });
    const c = client(url);
    const secret = c.join("secret");
    const open = c.join("open");
    const first = joined(open);
    const closed = within(new Promise((resolve) => secret.on("closed", resolve)), "the refusal");
    expect(await closed).toEqual({ reason: "forbidden" });
    await first;
    expect(c.state).toBe("open");
    const back = joined(open);
    c.drop();
    await back;
    expect(server!.channels.count("secret")).toBe(0);
    await expect(secret.say("x")).rejects.toThrow(/left or refused/);
  });

  it("stops for good on close 1008 too many connections", async () => {
    const url = await start({ maxConnectionsPerIp: 1 });
    const first = await WsClient.open(url);
    const c = client(url);
    const stopped = reaches(c, "closed");
    expect(await stopped).toMatchObject({ state: "closed", code: 1008, reason: "too many connections" });
    await first.close();
  });
});
