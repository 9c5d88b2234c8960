import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { eventually, WsClient, within } from "./helpers.js";
import { historyConformance } from "./history-conformance.js";
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
    client(node, id) {
      const { server, port } = current as NonNullable<typeof current>;
      const path = id === undefined ? "/" : `/?id=${id}`;
      return connectToWorker(
        server,
        node,
        port,
        () => WsClient.open(`ws://127.0.0.1:${port}${path}`),
        (c) => (c.ws as unknown as { _socket: Socket })._socket,
        (c) => c.close(),
      );
    },
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
