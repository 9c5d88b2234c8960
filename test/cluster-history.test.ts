import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, WsClient, within } from "./helpers.js";
import { type Delivery, historyConformance, join, range } from "./history-conformance.js";
import { Member } from "./history-member.js";
import { connectToWorker, type Spawned, serverPorts, spawnProject, startedWorkers, stopGroups, waitFor } from "./processes.js";

const groups: ChildProcess[] = [];
let current: { server: Spawned; port: number; admin: number } | undefined;
let args: string[] = [];

/** The CLI with two workers and history on (a process group: stopping it stops its workers too). */
async function cluster(): Promise<void> {
  const cli = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--admin-port", "0", "--workers", "2"];
  const server = spawnProject(groups, process.execPath, [...cli, "--max-messages-per-second", "100000", ...args], {}, true);
  const { ws: port } = await serverPorts(server, 10_000);
  const [, admin] = await waitFor(server, /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/, "admin");
  await eventually(() => startedWorkers(server).length === 2, "both workers", 10_000);
  current = { server, port, admin: Number(admin) };
}

/** The connections being placed, one at a time: the primary deals them round robin, so concurrent attempts would take each other's turns. */
let placing: Promise<unknown> = Promise.resolve();

/** A client of the current cluster whose connection worker `node` holds, as the kernel shows it. */
function on(node: 0 | 1, id?: string): Promise<WsClient> {
  const { server, port } = current as NonNullable<typeof current>;
  const path = id === undefined ? "/" : `/?id=${id}`;
  const placed = placing.then(() =>
    connectToWorker(
      server,
      node,
      port,
      () => WsClient.open(`ws://127.0.0.1:${port}${path}`),
      (c) => (c.ws as unknown as { _socket: Socket })._socket,
      (c) => c.close(),
    ),
  );
  placing = placed.catch(() => undefined);
  return placed;
}

historyConformance(
  "--workers 2 (the primary keeps the rings)",
  {
    async start({ historySize, recoverMax, historyTtl, highWaterMark }) {
      args = ["--history-size", String(historySize)];
      if (recoverMax !== undefined) args.push("--recover-max", String(recoverMax));
      if (historyTtl !== undefined) args.push("--history-ttl", String(historyTtl));
      if (highWaterMark !== undefined) args.push("--high-water-mark", String(highWaterMark));
      await cluster();
    },
    client: on,
    async newEpoch() {
      stopGroups(groups); // a new primary
      await cluster();
    },
    async dropped() {
      const response = await within(fetch(`http://127.0.0.1:${current?.admin}/metrics`), "a scrape");
      const found = /^ws_channels_dropped_total (\d+)$/m.exec(await response.text());
      return Number(found?.[1] ?? 0);
    },
    async stop() {
      stopGroups(groups);
      current = undefined;
    },
  },
  60_000,
);

describe("--workers 2 --history-size: a worker that stops reading its IPC channel", () => {
  const clients: WsClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    stopGroups(groups);
  });

  it("past --worker-backlog-bytes its says are dropped: its members get resync and recover exactly them", async () => {
    args = ["--history-size", "2000", "--worker-backlog-bytes", String(256 * 1024)];
    await cluster();
    const { server } = current as NonNullable<typeof current>;
    const member = new Member(await on(1), "burst");
    clients.push(member.client);
    member.join();
    await eventually(() => member.at(0), "the member's position");
    const publisher = await on(0, "pub");
    clients.push(publisher);
    await join(publisher, "burst");
    let said = 0;
    const sayOne = async (what: unknown): Promise<void> => {
      publisher.send({ say: what, to: "burst" });
      said++;
      while (((await publisher.next()) as Delivery).offset !== said);
    };
    for (let i = 0; i < 10; i++) await sayOne(i);
    await eventually(() => member.at(10), "10 says to the member");
    const stopped = startedWorkers(server)[1] as number;
    process.kill(stopped, "SIGSTOP"); // it reads nothing, its IPC channel included, until SIGCONT
    try {
      const big = "x".repeat(4096);
      const dropping = /is not reading its IPC channel: says to it are dropped/;
      while (!dropping.test(server.output()) && said < 1000) await sayOne(big);
      expect(server.output()).toMatch(dropping);
      for (let i = 0; i < 5; i++) await sayOne(big); // dropped too
    } finally {
      process.kill(stopped, "SIGCONT");
    }
    // every say after the first dropped one was dropped too: no later delivery shows the hole, the primary's word does
    await eventually(() => member.at(said), `the member at ${said}`, 20_000);
    expect(member.resyncs).toBe(1);
    for (let i = 0; i < 3; i++) await sayOne("after");
    await eventually(() => member.at(said), `the member at ${said}`);
    expect(member.refused).toEqual([]);
    expect(member.stale).toBe(0);
    expect(member.recovered.length).toBeGreaterThan(0); // a hole, filled by a recovery
    expect(member.taken).toEqual(range(0, said));
  }, 60_000);
});
