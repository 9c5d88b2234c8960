/*
 * ws-channels on two nodes behind one port: the peer process is a node:cluster primary whose two
 * workers share the port (connections alternate between them, so the clients are split over the
 * nodes), each with its own Channels on `broker()`. The server CPU the harness reports counts the
 * primary, both workers and whatever `extraPids` names (redis-server).
 */
import cluster, { type Worker } from "node:cluster";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { type Broker, Channels } from "ws-channels";
import { runPeer } from "./harness.js";

/** CPU time a process has used so far, in µs, from /proc (Linux); 0 once it is gone. */
export function cpuOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime + stime, in ticks of 10 ms
  } catch {
    return 0;
  }
}

export interface TwoNodes {
  /** Runs in the primary before the workers are forked. @returns the pids of other processes to count, and env for the workers. */
  primary(): Promise<{ extraPids: number[]; env: Record<string, string> }>;
  /** Runs in each worker: the node's broker. */
  broker(): Broker;
}

export function runTwoNodes(nodes: TwoNodes): void {
  if (cluster.isPrimary) {
    runPeer(async () => {
      const { extraPids, env } = await nodes.primary();
      const workers: Worker[] = [cluster.fork(env), cluster.fork(env)];
      const counts = new Map<Worker, number>();
      const ports = await Promise.all(
        workers.map(
          (worker) =>
            new Promise<number>((resolve, reject) => {
              worker.on("message", (message: { port?: number; members?: number }) => {
                if (message.port !== undefined) resolve(message.port);
                if (message.members !== undefined) counts.set(worker, message.members);
              });
              worker.once("exit", () => reject(new Error("a worker exited")));
            }),
        ),
      );
      const pids = [...workers.map((worker) => worker.process.pid as number), ...extraPids];
      return {
        port: ports[0] as number,
        members: () => [...counts.values()].reduce((sum, n) => sum + n, 0),
        otherCpuUs: () => pids.reduce((sum, pid) => sum + cpuOf(pid), 0),
      };
    });
    return;
  }
  const channels = new Channels({ broker: nodes.broker() });
  // port 0 in every worker: node:cluster gives them one shared port and alternates connections
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  let reporting: NodeJS.Timeout | undefined;
  const report = (): void => {
    if (reporting !== undefined) return;
    reporting = setTimeout(() => {
      reporting = undefined;
      process.send?.({ members: channels.count("bench") }, ignore);
    }, 10);
  };
  wss.on("connection", (ws) => {
    void channels.tryJoin("bench", ws).then(report); // counted once this node's subscription is acknowledged
    ws.on("close", report);
    ws.on("message", (data) => {
      void channels.broadcast("bench", data.toString());
    });
  });
  wss.once("listening", () => process.send?.({ port: (wss.address() as AddressInfo).port }, ignore));
}

/** A send to a primary that is exiting (the run is over): nothing to do, the worker exits with it. */
const ignore = (): void => undefined;
