/**
 * The broker conformance suite: the same cases against every setup (no broker, ClusterBroker
 * with forked workers, RedisBroker with three nodes on a real redis-server). A setup is a list of
 * nodes, each with members m0 and m1 (real ws connections), driven through commands
 * (fixtures/node.mjs); a new broker passes when `conformance()` passes against its own setup.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BroadcastResult, ChannelId, ChannelsStats } from "ws-channels";
import { until } from "../helpers.js";
import type { Command } from "./fixtures/node.mjs";

/** One node as the suite drives it: in this process, or a worker over IPC. */
export interface NodeHandle {
  call(command: Command): Promise<unknown>;
  /** Whether the node's process is gone (a fault test killed it). */
  dead?(): boolean;
}

export interface Setup {
  readonly nodes: NodeHandle[];
  /** How many nodes the broker's server has subscribed to `channel` (Redis's PUBSUB NUMSUB, the primary's routes). */
  readonly subscribers?: (channel: ChannelId) => Promise<number>;
  close(): Promise<void>;
}

interface Received {
  data: Uint8Array;
  isBinary: boolean;
}

/** Long waits: a burst of 10,000 broadcasts through a broker, on a loaded machine. */
const LONG_MS = 20_000;
let next = 0;
/** A channel name no other test uses. */
export const fresh = (what: string): string => `${what}-${next++}`;

export const received = async (node: NodeHandle, name: string): Promise<Received[]> =>
  (await node.call({ op: "received", name })) as Received[];
export const texts = async (node: NodeHandle, name: string): Promise<string[]> =>
  (await received(node, name)).map(({ data }) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString());
export const stats = async (node: NodeHandle): Promise<ChannelsStats> => (await node.call({ op: "stats" })) as ChannelsStats;

/** Waits until member `name` of `node` has received at least `n` messages. */
export async function receivedAtLeast(node: NodeHandle, name: string, n: number, ms = 5000): Promise<void> {
  await until(async () => (await received(node, name)).length >= n, `${name} to receive ${n} messages`, ms);
}

/** A string of exactly `bytes` UTF-8 bytes, with two-byte characters in it. */
function textOf(bytes: number): string {
  return "é".repeat(Math.floor(bytes / 2)) + "x".repeat(bytes % 2);
}

/** After a test: on every live node, every member leaves every channel, and what they received is forgotten. */
export async function reset(setup: Setup): Promise<void> {
  for (const node of setup.nodes) {
    if (node.dead?.() === true) continue;
    await node.call({ op: "leaveAll" });
    await node.call({ op: "clear" });
  }
}

/**
 * Registers the suite. Call at the top level of a test file; the setup is made once for the file
 * and closed after every test of the file (its own fault tests too, registered after this).
 * @returns the setup, for the file's own tests, once `beforeAll` has made it.
 */
export function conformance(name: string, makeSetup: () => Promise<Setup>): () => Setup {
  let setup: Setup | undefined;
  const get = (): Setup => {
    if (setup === undefined) throw new Error("setup not made");
    return setup;
  };
  beforeAll(async () => {
    setup = await makeSetup();
  }, 60_000);
  afterAll(() => setup?.close(), 30_000);

  describe(`broker conformance: ${name}`, () => {
    afterEach(() => reset(get()));

    it("a broadcast from each node reaches every member on every node exactly once; a node with no member gets nothing", async () => {
      const { nodes } = get();
      const channel = fresh("everyone");
      const fence = fresh("fence");
      const outsider = nodes.length > 1 ? nodes.at(-1) : undefined;
      const insiders = outsider === undefined ? nodes : nodes.slice(0, -1);
      for (const node of insiders) for (const name of ["m0", "m1"]) expect(await node.call({ op: "tryJoin", channel, name })).toBe(true);
      for (const node of nodes) await node.call({ op: "tryJoin", channel: fence, name: "m1" });
      for (const [i, node] of nodes.entries()) {
        const result = (await node.call({ op: "broadcast", channel, data: `from ${i}` })) as BroadcastResult;
        // the result counts this node's deliveries only
        expect(result.delivered).toBe(node === outsider ? 0 : 2);
      }
      const expected = nodes.map((_, i) => `from ${i}`).sort();
      for (const node of insiders) for (const name of ["m0", "m1"]) await receivedAtLeast(node, name, nodes.length);
      // Every broadcast to `channel` left before the fence from the last node; once the fence is
      // in everywhere, anything owed has arrived.
      await nodes[0]?.call({ op: "broadcast", channel: fence, data: "fence" });
      for (const node of nodes) await receivedAtLeast(node, "m1", node === outsider ? 1 : nodes.length + 1);
      for (const node of insiders) {
        expect((await texts(node, "m0")).sort()).toEqual(expected);
        expect((await texts(node, "m1")).filter((t) => t !== "fence").sort()).toEqual(expected);
      }
      if (outsider !== undefined) {
        expect(await texts(outsider, "m0")).toEqual([]);
        expect(await texts(outsider, "m1")).toEqual(["fence"]);
        expect((await stats(outsider)).broker?.stray).toBe(0);
      }
    });

    it('"1" and 1 are two channels on every node', async () => {
      const { nodes } = get();
      const n = 1_000_000 + next++;
      for (const node of nodes) {
        await node.call({ op: "tryJoin", channel: String(n), name: "m0" });
        await node.call({ op: "tryJoin", channel: n, name: "m1" });
      }
      await nodes[0]?.call({ op: "broadcast", channel: n, data: "number" });
      await nodes[0]?.call({ op: "broadcast", channel: String(n), data: "string" });
      for (const node of nodes) {
        await receivedAtLeast(node, "m0", 1);
        await receivedAtLeast(node, "m1", 1);
        expect(await texts(node, "m0")).toEqual(["string"]);
        expect(await texts(node, "m1")).toEqual(["number"]);
      }
    });

    it("text and binary payloads of 0, 125, 126, 65,535 and 65,536 bytes arrive byte for byte, with their type", async () => {
      const { nodes } = get();
      const channel = fresh("sizes");
      for (const node of nodes) await node.call({ op: "tryJoin", channel, name: "m0" });
      const sent: { data: string | Uint8Array; bytes: Buffer; isBinary: boolean }[] = [];
      for (const size of [0, 125, 126, 65_535, 65_536]) {
        const text = textOf(size);
        sent.push({ data: text, bytes: Buffer.from(text), isBinary: false });
        const binary = Buffer.alloc(size);
        for (let i = 0; i < size; i++) binary[i] = (i * 31 + size) & 0xff;
        sent.push({ data: binary, bytes: binary, isBinary: true });
      }
      const origin = nodes.length - 1;
      for (const { data } of sent) await nodes[origin]?.call({ op: "broadcast", channel, data });
      for (const node of nodes) {
        await receivedAtLeast(node, "m0", sent.length);
        const got = await received(node, "m0");
        expect(got).toHaveLength(sent.length);
        for (const [i, { bytes, isBinary }] of sent.entries()) {
          const { data, isBinary: gotBinary } = got[i] as Received;
          expect(gotBinary, `message ${i}`).toBe(isBinary);
          expect(Buffer.compare(Buffer.from(data.buffer, data.byteOffset, data.byteLength), bytes), `message ${i}`).toBe(0);
        }
      }
    });

    it("except skips one member of the sending node; local stays on the sending node", async () => {
      const { nodes } = get();
      const channel = fresh("except");
      for (const node of nodes) for (const name of ["m0", "m1"]) await node.call({ op: "tryJoin", channel, name });
      const [first] = nodes;
      expect(await first?.call({ op: "broadcast", channel, data: "not to m0 here", except: "m0" })).toEqual({
        delivered: 1,
        failed: 0,
        dropped: 0,
      });
      expect(await first?.call({ op: "broadcast", channel, data: "local", local: true })).toEqual({ delivered: 2, failed: 0, dropped: 0 });
      await first?.call({ op: "broadcast", channel, data: "last" });
      for (const [i, node] of nodes.entries()) {
        await receivedAtLeast(node, "m0", 2);
        await receivedAtLeast(node, "m1", i === 0 ? 3 : 2);
        if (i === 0) {
          expect(await texts(node, "m0")).toEqual(["local", "last"]);
          expect(await texts(node, "m1")).toEqual(["not to m0 here", "local", "last"]);
        } else {
          // `last` came after `local` from the same origin: had `local` travelled, it would be in
          expect(await texts(node, "m0")).toEqual(["not to m0 here", "last"]);
          expect(await texts(node, "m1")).toEqual(["not to m0 here", "last"]);
        }
      }
    });

    it("10,000 broadcasts from one node, to two channels interleaved, arrive in order on every node", async () => {
      const { nodes } = get();
      const a = fresh("burst-a");
      const b = fresh("burst-b");
      for (const node of nodes) {
        await node.call({ op: "tryJoin", channel: a, name: "m0" });
        await node.call({ op: "tryJoin", channel: b, name: "m1" });
      }
      const count = 10_000;
      await nodes[0]?.call({ op: "burst", channelList: [a, b], count });
      const want = (channel: string, parity: number): string[] =>
        Array.from({ length: count / 2 }, (_, i) => `${channel}:${2 * i + parity}`);
      for (const node of nodes) {
        await receivedAtLeast(node, "m0", count / 2, LONG_MS);
        await receivedAtLeast(node, "m1", count / 2, LONG_MS);
        expect(await texts(node, "m0")).toEqual(want(a, 0));
        expect(await texts(node, "m1")).toEqual(want(b, 1));
      }
      for (const node of nodes.slice(1)) expect((await stats(node)).broker?.lost).toBe(0);
    }, 60_000);

    it("a broadcast made right after tryJoin resolves reaches the new member, from every node", async () => {
      const { nodes } = get();
      for (let round = 0; round < 10; round++) {
        for (const [j, joiner] of nodes.entries()) {
          const channel = fresh("right-after");
          expect(await joiner.call({ op: "tryJoin", channel, name: "m0" })).toBe(true);
          const sender = nodes[(j + 1) % nodes.length] as NodeHandle;
          await sender.call({ op: "broadcast", channel, data: `${round}` });
          await receivedAtLeast(joiner, "m0", 1);
          expect(await texts(joiner, "m0")).toEqual([`${round}`]);
          await joiner.call({ op: "clear" });
          await joiner.call({ op: "leave", channel, name: "m0" });
        }
      }
    });

    it("join then subscribed(): as good as tryJoin; a second member's tryJoin waits for the channel's subscription", async () => {
      const { nodes } = get();
      const [sender] = nodes;
      const joiner = nodes.at(-1) as NodeHandle;
      const channel = fresh("join-sync");
      expect(await joiner.call({ op: "join", channel, name: "m0" })).toBe(true);
      expect(await joiner.call({ op: "tryJoin", channel, name: "m1" })).toBe(true);
      await sender?.call({ op: "broadcast", channel, data: "both" });
      await receivedAtLeast(joiner, "m0", 1);
      await receivedAtLeast(joiner, "m1", 1);
      const other = fresh("join-sync");
      await joiner.call({ op: "join", channel: other, name: "m0" });
      await joiner.call({ op: "subscribed", channel: other });
      await sender?.call({ op: "broadcast", channel: other, data: "after subscribed" });
      await receivedAtLeast(joiner, "m0", 2);
      expect(await texts(joiner, "m0")).toEqual(["both", "after subscribed"]);
    });

    it("subscriptions follow the table: the broker's count falls to 0 with the last member, and stays exact after 1,000 join/leave cycles", async () => {
      const { nodes, subscribers } = get();
      if (subscribers === undefined) return; // no broker: nothing to count
      const channel = fresh("numsub");
      for (const node of nodes) await node.call({ op: "tryJoin", channel, name: "m0" });
      expect(await subscribers(channel)).toBe(nodes.length);
      for (const node of nodes) await node.call({ op: "tryJoin", channel, name: "m1" });
      expect(await subscribers(channel)).toBe(nodes.length);
      for (const node of nodes) await node.call({ op: "leave", channel, name: "m0" });
      expect(await subscribers(channel)).toBe(nodes.length);
      for (const node of nodes) await node.call({ op: "leave", channel, name: "m1" });
      await until(async () => (await subscribers(channel)) === 0, "the subscriptions to go");
      // subscribe, unsubscribe, subscribe... in call order: the last one wins, exactly
      for (const node of nodes) await node.call({ op: "cycles", channel, name: "m0", count: 1000, endJoined: true });
      expect(await subscribers(channel)).toBe(nodes.length);
      await nodes[0]?.call({ op: "cycles", channel, name: "m1", count: 1000, endJoined: false });
      await nodes[0]?.call({ op: "leave", channel, name: "m0" });
      await until(async () => (await subscribers(channel)) === nodes.length - 1, "node 0's subscription to go");
      await nodes.at(-1)?.call({ op: "broadcast", channel, data: "still here" });
      for (const node of nodes.slice(1, -1)) await receivedAtLeast(node, "m0", 1);
      for (const node of nodes) await node.call({ op: "leaveAll" });
      await until(async () => (await subscribers(channel)) === 0, "every subscription to go");
    }, 60_000);
  });
  return get;
}
