import cluster, { type Worker } from "node:cluster";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Channels, type ChannelsStats } from "ws-channels";
import { type ClusterPrimary, setupPrimary, WorkerBacklog } from "ws-channels/cluster";
import { RedisBroker } from "ws-channels/redis";
import type { NodeHandle } from "./brokers/conformance.js";
import { RedisServer } from "./brokers/redis-server.js";
import { until, within } from "./helpers.js";

/*
 * The brokers' pending bounds count bytes, and the cluster primary bounds what each worker has not
 * taken yet: a stopped worker (SIGSTOP) cannot make the primary's memory grow. Real workers, a
 * real redis-server.
 */
const fixture = (name: string): string => fileURLToPath(new URL(`./brokers/fixtures/${name}`, import.meta.url));
const workers: Worker[] = [];
let primary: ClusterPrimary | undefined;

afterAll(async () => {
  for (const worker of workers) {
    if (worker.isDead()) continue;
    worker.process.kill("SIGCONT");
    const exited = once(worker, "exit");
    worker.kill();
    await within(exited, "a worker to exit");
  }
  primary?.close();
});

/** Forks a conformance worker (fixtures/cluster-worker.mjs) with these broker options, driven over IPC. */
async function fork(options: object): Promise<{ worker: Worker; node: NodeHandle }> {
  cluster.setupPrimary({ exec: fixture("cluster-worker.mjs") });
  const worker = cluster.fork({ BROKER_OPTIONS: JSON.stringify(options), MEMBERS: '["m0"]' });
  workers.push(worker);
  const replies = new Map<number, (reply: { result?: unknown; error?: string }) => void>();
  worker.on("message", (message: { testReply?: { id: number; result?: unknown; error?: string } }) => {
    if (message?.testReply !== undefined) replies.get(message.testReply.id)?.(message.testReply);
  });
  await within(
    new Promise<void>((resolve) => worker.on("message", (message: { testReady?: boolean }) => message?.testReady && resolve())),
    "a worker to start",
    15_000,
  );
  let next = 0;
  const node: NodeHandle = {
    call: async (command) => {
      const id = next++;
      const reply = new Promise<{ result?: unknown; error?: string }>((resolve) => replies.set(id, resolve));
      worker.send({ test: { id, command } });
      const { result, error } = await within(reply, `worker ${worker.id}: ${command.op}`, 20_000);
      if (error !== undefined) throw new Error(error);
      return result;
    },
  };
  return { worker, node };
}

describe("pending bounds in bytes", () => {
  it("RedisBroker: a publish past maxPendingBytes is not published, and counted", async () => {
    const redis = new RedisServer();
    await redis.start();
    const broker = new RedisBroker({ url: redis.path, maxPendingBytes: 1000 });
    const up = new Promise((resolve) => broker.once("up", resolve));
    const channels = new Channels({ broker });
    try {
      await within(up, "the broker to come up");
      expect(() => new RedisBroker({ url: redis.path, maxPendingBytes: 0 })).toThrow(RangeError);
      // both in one tick: the first is still unanswered when the second comes
      await Promise.all([channels.broadcast("room", "a".repeat(600)), channels.broadcast("room", "b".repeat(600))]);
      await until(async () => channels.stats().broker?.published === 1, "the first publish to be answered");
      expect(channels.stats().broker).toMatchObject({ published: 1, unpublished: 1 });
    } finally {
      await channels.close();
      await redis.stop();
    }
  });

  it("ClusterBroker: a publish past maxPendingBytes is not published, and counted; the primary bounds each worker", async () => {
    primary = setupPrimary({}, { maxPendingBytes: 256 * 1024 });
    expect(() => new WorkerBacklog({ maxPending: 0 })).toThrow(RangeError);
    const small = await fork({ maxPendingBytes: 100 });
    await small.node.call({ op: "burst", channelList: ["c"], count: 1, pad: 200 });
    await small.node.call({ op: "burst", channelList: ["c"], count: 1 });
    const stats = async (): Promise<ChannelsStats["broker"]> => ((await small.node.call({ op: "stats" })) as ChannelsStats).broker;
    await until(async () => (await stats())?.published === 1, "a publish");
    expect(await stats()).toMatchObject({ published: 1, unpublished: 1 });

    // A stopped worker: what the primary has for it stays under its bound, the rest is dropped and counted
    const [sender, stuck] = [await fork({}), await fork({})];
    for (const { node } of [sender, stuck]) {
      await node.call({ op: "join", channel: "big", name: "m0" });
      await node.call({ op: "subscribed", channel: "big" });
    }
    stuck.worker.process.kill("SIGSTOP");
    const count = 200;
    const before = primary.stats().routed;
    await sender.node.call({ op: "burst", channelList: ["big"], count, pad: 64 * 1024 });
    await until(async () => primary?.stats().routed === before + count, "the primary to route every broadcast", 10_000);
    const { dropped } = primary.stats();
    expect(dropped).toBeGreaterThan(0);
    stuck.worker.process.kill("SIGCONT");
    // what was not dropped arrives, and the worker goes on receiving
    await sender.node.call({ op: "burst", channelList: ["big"], count: 1 });
    await until(
      async () => ((await stuck.node.call({ op: "counts" })) as { m0: number }).m0 === count + 1 - dropped,
      "the stuck worker to get what was kept for it",
      10_000,
    );
    expect(primary.stats().dropped).toBe(dropped);
  }, 60_000);
});

describe("cluster IPC requests", () => {
  it("a claim or locate the primary never answers is refused / found nowhere within the timeout, never hangs", async () => {
    cluster.setupPrimary({ exec: fixture("adapter-worker.mjs") });
    const worker = cluster.fork({ REQUEST_MS: "300" });
    workers.push(worker);
    type Result = { claimed: boolean; located: unknown[]; ms: number };
    const result = await within(
      new Promise<Result>((resolve) =>
        worker.on("message", (message: { testResult?: Result }) => message?.testResult && resolve(message.testResult)),
      ),
      "the worker's result",
      15_000,
    );
    expect(result).toMatchObject({ claimed: false, located: [] });
    expect(result.ms).toBeGreaterThanOrEqual(290);
  }, 30_000);
});
