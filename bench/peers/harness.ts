/*
 * What every peer server shares, so that each peer file holds only its own server. A peer runs as
 * its own process (forked with IPC and --expose-gc) and answers the orchestrator:
 *   peer -> {type:"ready", port, rss} once listening (rss after a gc, no connections yet),
 *           or {type:"skipped", reason} if the system cannot run here, or {type:"failed", reason}
 *   {type:"members"}  -> {type:"members", count}
 *   {type:"begin"}    -> {type:"begun", rss}            (after a gc; starts CPU and block probes)
 *   {type:"end"}      -> {type:"ended", cpuUs, maxBlockMs, rss}
 * The peer exits when the IPC channel closes, so it never outlives the orchestrator.
 */
import { performance } from "node:perf_hooks";

/** A peer server once it listens: its port and how many connections are in room "bench". */
export interface Listening {
  port: number;
  members(): number;
  /** CPU time (µs) used so far by the system's other processes (workers, redis-server), if it has any. */
  otherCpuUs?(): number;
}

/** Messages the orchestrator sends to a peer. */
export type ToPeer = { type: "members" } | { type: "begin" } | { type: "end" };

/** Messages a peer sends to the orchestrator. */
export type FromPeer =
  | { type: "ready"; port: number; rss: number }
  | { type: "skipped"; reason: string }
  | { type: "failed"; reason: string }
  | { type: "members"; count: number }
  | { type: "begun"; rss: number }
  | { type: "ended"; cpuUs: number; maxBlockMs: number; rss: number };

/** Thrown by a peer's start function when the system cannot run here (the row is skipped). */
export class Skip extends Error {}

/** The resident set size after a full gc (gc is there because peers run with --expose-gc). */
function settledRss(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage.rss();
}

/**
 * Runs a peer: calls `start` (which listens on 127.0.0.1, port 0), then answers the orchestrator
 * over IPC until the channel closes.
 */
export function runPeer(start: () => Promise<Listening>): void {
  const send = (message: FromPeer): void => {
    if (process.connected) process.send?.(message, undefined, undefined, () => {}); // dropped once the orchestrator left
  };
  process.on("disconnect", () => process.exit());
  let cpu = process.cpuUsage();
  let otherCpu = 0;
  let probe: NodeJS.Timeout | undefined;
  let maxGap = 0;

  start().then(
    (server) => {
      process.on("message", (message: ToPeer) => {
        if (message.type === "members") send({ type: "members", count: server.members() });
        if (message.type === "begin") {
          const rss = settledRss();
          cpu = process.cpuUsage();
          otherCpu = server.otherCpuUs?.() ?? 0;
          // A 1 ms timer: any gap between two ticks beyond 1 ms is time the event loop was blocked.
          let last = performance.now();
          maxGap = 0;
          probe = setInterval(() => {
            const now = performance.now();
            maxGap = Math.max(maxGap, now - last);
            last = now;
          }, 1);
          send({ type: "begun", rss });
        }
        if (message.type === "end") {
          clearInterval(probe);
          const used = process.cpuUsage(cpu);
          const others = (server.otherCpuUs?.() ?? 0) - otherCpu;
          send({
            type: "ended",
            cpuUs: used.user + used.system + others,
            maxBlockMs: Math.max(0, maxGap - 1),
            rss: process.memoryUsage.rss(),
          });
        }
      });
      send({ type: "ready", port: server.port, rss: settledRss() });
    },
    (error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      process.exitCode = error instanceof Skip ? 0 : 1;
      // Disconnect (and so exit) only once the message is out.
      process.send?.(error instanceof Skip ? { type: "skipped", reason } : { type: "failed", reason }, () => process.disconnect?.());
    },
  );
}
