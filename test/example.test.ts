import { once } from "node:events";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, WsClient, within } from "./helpers.js";

process.env.PORT = "0";
const { channels, wss } = await import("../examples/chat.js");
await within(once(wss, "listening"), "the example to listen");
const { port } = wss.address() as { port: number };
afterAll(() => new Promise((resolve) => wss.close(resolve)));

describe("the README example (examples/chat.ts), imported from the built package", () => {
  it("joins, says, lists users, and forgets a closed socket", async () => {
    const ann = await WsClient.open(`ws://127.0.0.1:${port}/?user=ann`);
    const bob = await WsClient.open(`ws://127.0.0.1:${port}/?user=bob`);
    ann.send({ op: "join", room: "lobby" });
    bob.send({ op: "join", room: "lobby" });
    // ann and bob are two connections: wait until both joins are in before anyone speaks
    await eventually(() => channels.count("lobby") === 2, "both to join");
    bob.send({ op: "say", room: "lobby", text: "hi" });
    expect(await ann.next()).toEqual({ room: "lobby", user: "bob", text: "hi" });
    ann.send({ op: "who", room: "lobby" });
    expect(await ann.next()).toEqual({ room: "lobby", users: ["ann", "bob"] });
    await bob.close();
    await eventually(() => channels.count("lobby") === 1, "bob to leave");
    await ann.close();
  });

  it("refuses bad messages without going down", async () => {
    for (const bad of ["not json", "null", "5", '{"op": "join"}']) {
      const client = await WsClient.open(`ws://127.0.0.1:${port}/`);
      client.ws.send(bad);
      expect((await client.closedBy()).code).toBeGreaterThanOrEqual(1007);
    }
    const still = await WsClient.open(`ws://127.0.0.1:${port}/?user=cy`);
    still.send({ op: "who", room: "empty" });
    expect(await still.next()).toEqual({ room: "empty", users: [] });
    await still.close();
  });
});
