import cluster, { type Worker } from "node:cluster";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type ClusterPrimary, setupPrimary } from "ws-channels/cluster";
import { until, within } from "../helpers.js";
import { conformance, fresh, type NodeHandle, receivedAtLeast, reset, texts } from "./conformance.js";

let primary: ClusterPrimary;
const workers: Worker[] = [];

/** A forked worker running fixtures/cluster-worker.mjs, driven over its IPC channel. */
function handleOf(worker: Worker): NodeHandle {
  let nextId = 0;
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  worker.on("message", (message: { testReply?: { id: number; result?: unknown; error?: string } }) => {
    const reply = message?.testReply;
    if (reply === undefined) return;
    const waiter = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (reply.error !== undefined) waiter?.reject(new Error(reply.error));
    else waiter?.resolve(reply.result);
  });
  return {
    dead: () => worker.isDead(),
    call: (command) => {
      const id = nextId++;
      const reply = new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
      worker.send({ test: { id, command } });
      return within(reply, `worker ${worker.id}: ${command.op}`, 20_000);
    },
  };
}

const setup = conformance("ClusterBroker, three forked workers", async () => {
  primary = setupPrimary({ exec: fileURLToPath(new URL("./fixtures/cluster-worker.mjs", import.meta.url)), silent: false });
  for (let i = 0; i < 3; i++) {
    const worker = cluster.fork();
    workers.push(worker);
    await within(
      new Promise<void>((resolve) => worker.on("message", (message: { testReady?: boolean }) => message?.testReady && resolve())),
      "a worker to start",
      15_000,
    );
  }
  await until(async () => primary.stats().workers === 3, "the workers to say hello");
  return {
    nodes: workers.map(handleOf),
    subscribers: async (channel) => primary.subscribers(channel),
    close: async () => {
      for (const worker of workers) {
        if (worker.isDead()) continue;
        const exited = once(worker, "exit");
        worker.kill();
        await within(exited, "a worker to exit");
      }
      primary.close();
    },
  };
});

describe("ClusterBroker faults", () => {
  afterEach(() => reset(setup()));

  it("the application's own IPC messages pass untouched beside the broker's", async () => {
    const [a] = setup().nodes as [NodeHandle];
    // every command of this suite is an application message on the same channel; one more, plainly:
    expect(await a.call({ op: "counts" })).toEqual({ m0: 0, m1: 0 });
  });

  it("a turn's broadcasts cross IPC as one message: 500 in one burst reach the primary as one, every other worker gets them all in order", async () => {
    const [a, b, c] = setup().nodes as [NodeHandle, NodeHandle, NodeHandle];
    const channels = [fresh("turn-a"), fresh("turn-b")];
    for (const node of [b, c]) for (const [i, channel] of channels.entries()) await node.call({ op: "tryJoin", channel, name: `m${i}` });
    const sizes: number[] = [];
    const count = (_worker: Worker, message: { wsChannels?: string; envelopes?: unknown[] }): void => {
      if (message?.wsChannels === "pubs") sizes.push(message.envelopes?.length ?? 0);
    };
    cluster.on("message", count);
    const { forwarded } = primary.stats();
    try {
      await a.call({ op: "burst", channelList: channels, count: 500 });
      for (const node of [b, c]) {
        await receivedAtLeast(node, "m0", 250);
        await receivedAtLeast(node, "m1", 250);
        expect(await texts(node, "m0")).toEqual(Array.from({ length: 250 }, (_, i) => `${channels[0]}:${2 * i}`));
        expect(await texts(node, "m1")).toEqual(Array.from({ length: 250 }, (_, i) => `${channels[1]}:${2 * i + 1}`));
      }
    } finally {
      cluster.off("message", count);
    }
    expect(sizes).toEqual([500]);
    await until(async () => primary.stats().forwarded === forwarded + 1000, "the primary to count every copy written");
  });

  it("a worker killed: the primary forgets its subscriptions and the others keep delivering", async () => {
    const [a, b, c] = setup().nodes as [NodeHandle, NodeHandle, NodeHandle];
    const channel = fresh("worker-dies");
    for (const node of [a, b, c]) await node.call({ op: "tryJoin", channel, name: "m0" });
    expect(primary.subscribers(channel)).toBe(3);
    const victim = workers[2] as Worker;
    const exited = once(victim, "exit");
    victim.process.kill("SIGKILL");
    await within(exited, "the worker to die");
    await until(async () => primary.subscribers(channel) === 2, "the primary to forget the dead worker");
    expect(primary.stats().workers).toBe(2);
    for (let i = 0; i < 100; i++) await a.call({ op: "broadcast", channel, data: `${i}` });
    await receivedAtLeast(b, "m0", 100);
    expect(await texts(b, "m0")).toEqual(Array.from({ length: 100 }, (_, i) => `${i}`));
    expect(primary.stats().dropped).toBe(0);
  });
});
