import { describe, expect, it } from "vitest";
import { eventually, type TcpClient, type WsClient } from "./helpers.js";

/**
 * Two nodes of one service (two cluster workers, or two servers on one Redis), as a client sees
 * them: a way to connect to each, and a way to make one of them die without a goodbye.
 */
export interface TwoNodes {
  /** A WebSocket client connected to node `node`, at `path` (`/?id=...`, say). */
  ws(node: 0 | 1, path?: string): Promise<WsClient>;
  /** A TCP client connected to node `node`'s broadcast port. */
  tcp(node: 0 | 1): Promise<TcpClient>;
  /** A WebSocket client connected at `path` to whichever node takes it (no retries, for races). */
  race(node: 0 | 1, path: string): Promise<WsClient>;
}

/**
 * Waits until the server has settled `client`'s id claim (a connection's messages wait behind
 * it, so the answer to a join means it is settled), and checks it was let in.
 */
export async function settled(client: WsClient): Promise<WsClient> {
  expect(await fate(client)).toBe("in");
  return client;
}

/** Whether the server let `client` in: it answers a join, or closes it. */
async function fate(client: WsClient): Promise<"in" | "out"> {
  client.send({ join: "probe" });
  const answered = client.next().then(
    () => "in" as const,
    () => "out" as const, // no answer: the close won
  );
  return Promise.race([answered, client.closed.then(() => "out" as const)]);
}

/** Joins `channel` and waits for `{"joined": channel}`. */
export async function join(client: WsClient, channel: string): Promise<void> {
  client.send({ join: channel });
  expect(await client.next()).toEqual({ joined: channel });
}

/** Opens `path` on `node` until the server keeps it open (an id freed elsewhere is freed asynchronously). */
export async function openWhenFree(nodes: TwoNodes, node: 0 | 1, path: string, ms: number): Promise<WsClient> {
  const deadline = Date.now() + ms;
  for (;;) {
    const client = await nodes.ws(node, path);
    if ((await fate(client)) === "in") return client;
    if (Date.now() > deadline) throw new Error(`${path} still in use after ${ms} ms`);
    await client.close();
  }
}

/**
 * The rows of the README's "what spans every node" table, between clients of two nodes.
 * `setup` is called before each case.
 */
export function spreadsOverNodes(name: string, setup: () => TwoNodes): void {
  describe(`${name}: what spans every node`, () => {
    it("a say reaches every member on every node, the sender once", async () => {
      const nodes = setup();
      const [a, b, c] = [await nodes.ws(0), await nodes.ws(1), await nodes.ws(1)];
      for (const client of [a, b, c]) await join(client, "room");
      a.send({ say: "from 0", to: "room" });
      for (const client of [a, b, c]) expect(await client.next()).toEqual({ to: "room", say: "from 0" });
      b.send({ say: "from 1", to: "room" });
      for (const client of [a, b, c]) expect(await client.next()).toEqual({ to: "room", say: "from 1" });
      // exactly once: after a marker, nothing else arrived
      c.send({ say: "end", to: "room" });
      for (const client of [a, b, c]) expect(await client.next()).toEqual({ to: "room", say: "end" });
      for (const client of [a, b, c]) expect(client.received).toHaveLength(4);
      await Promise.all([a, b, c].map((client) => client.close()));
    });

    it("once a client sees joined, a say sent on the other node reaches it", async () => {
      const nodes = setup();
      const speaker = await nodes.ws(0);
      await join(speaker, "fresh");
      for (let i = 0; i < 10; i++) {
        const listener = await nodes.ws(1);
        await join(listener, "fresh"); // the first member of "fresh" on node 1: a new subscription each time
        speaker.send({ say: i, to: "fresh" });
        expect(await speaker.next()).toEqual({ to: "fresh", say: i });
        expect(await listener.next()).toEqual({ to: "fresh", say: i });
        await listener.close();
      }
      await speaker.close();
    });

    it("targets reach an id on the other node; unknown targets lists only ids connected nowhere", async () => {
      const nodes = setup();
      const alice = await settled(await nodes.ws(0, "/?id=alice"));
      const bob = await settled(await nodes.ws(1, "/?id=bob"));
      alice.send({ targets: ["bob", "nobody", "bob", 7], payload: { n: 1 } });
      expect(await bob.next()).toEqual({ from: "alice", payload: { n: 1 } });
      expect(await alice.next()).toEqual({ error: "unknown targets", targets: ["nobody", 7] });
      bob.send({ targets: ["alice", "bob"], payload: "both" });
      expect(await alice.next()).toEqual({ from: "bob", payload: "both" });
      expect(await bob.next()).toEqual({ from: "bob", payload: "both" });
      await Promise.all([alice.close(), bob.close()]);
    });

    it("an id in use on one node is refused on the other with 1008, and is free again once its connection closes", async () => {
      const nodes = setup();
      const first = await settled(await nodes.ws(0, "/?id=carol"));
      const second = await nodes.ws(1, "/?id=carol");
      expect(await second.closedBy()).toEqual({ code: 1008, reason: "id in use" });
      first.send({ join: "still" });
      expect(await first.next()).toEqual({ joined: "still" });
      await first.close();
      const third = await openWhenFree(nodes, 1, "/?id=carol", 3000);
      await third.close();
    });

    it("connections claiming one id on both nodes at once: exactly one is let in", async () => {
      const nodes = setup();
      for (let round = 0; round < 5; round++) {
        const claimants = await Promise.all(Array.from({ length: 6 }, (_, i) => nodes.race((i % 2) as 0 | 1, `/?id=race${round}`)));
        const fates = await Promise.all(claimants.map(fate));
        expect(fates.filter((f) => f === "in")).toHaveLength(1);
        await Promise.all(claimants.map((c) => c.close()));
      }
    });

    it("a chunk from a TCP client reaches every other TCP client on every node, not the sender", async () => {
      const nodes = setup();
      const [sender, here, there] = [await nodes.tcp(0), await nodes.tcp(0), await nodes.tcp(1)];
      // the other node subscribes when its first TCP client arrives: write until it has a copy
      await eventually(
        () => {
          if (!there.text.includes("ping\n")) sender.socket.write("ping\n");
          return there.text.includes("ping\n");
        },
        "the other node's TCP client to get a line",
        5000,
      );
      sender.socket.write("last\n");
      await eventually(() => there.text.endsWith("last\n") && here.text.endsWith("last\n"), "the last line on both nodes");
      expect(sender.text).toBe("");
      await Promise.all([sender.close(), here.close(), there.close()]);
    });
  });
}
