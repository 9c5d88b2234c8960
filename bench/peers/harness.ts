/*
 * What every peer server shares, so that each peer file holds only its own server. A peer runs as
 * its own process (forked with IPC and --expose-gc) and answers the orchestrator:
 *   peer -> {type:"ready", port, rss, heap} once listening (after a gc, no connections yet),
 *           or {type:"skipped", reason} if the system cannot run here, or {type:"failed", reason}
 *   {type:"members"}  -> {type:"members", count}
 *   {type:"begin"}    -> {type:"begun", rss, heap}      (after a gc; starts CPU and block probes)
 *   {type:"end"}      -> {type:"ended", cpuUs, maxBlockMs, rss}
 * The peer exits when the IPC channel closes, so it never outlives the orchestrator.
 *
 * Connections say by their URL how they take part (`roleOf`): by default they join room "bench",
 * and every message a client sends is broadcast to that room; `/?room=NAME` joins room NAME
 * instead; `/?control=1` is the many-rooms trigger: each message it sends ("SEQ T") makes the
 * server publish one message to every room, built by `roomMessage`.
 */
import { performance } from "node:perf_hooks";

/** A peer server once it listens: its port and how many connections are in a room. */
export interface Listening {
  port: number;
  members(): number;
  /** CPU time (µs) used so far by the system's other processes (workers, redis-server), if it has any. */
  otherCpuUs?(): number;
}

/** How a connection takes part, from its request URL: it joins `room`, or it is the control connection. */
export function roleOf(url: string | undefined): { room: string; control: false } | { room: undefined; control: true } {
  const query = new URLSearchParams(url?.split("?")[1] ?? "");
  if (query.has("control")) return { room: undefined, control: true };
  return { room: query.get("room") ?? "bench", control: false };
}

const PAD = "x".repeat(100);

/**
 * The message a round trigger "SEQ T" from the control connection publishes to `room`: about 100
 * bytes of JSON, with the fields the load generator checks first.
 */
export function roomMessage(trigger: string, room: string): string {
  const space = trigger.indexOf(" ");
  const head = `{"seq":${trigger.slice(0, space)},"t":${trigger.slice(space + 1)},"room":${room},"pad":"`;
  return `${head}${PAD.slice(0, Math.max(0, 98 - head.length))}"}`;
}

/** Messages the orchestrator sends to a peer. */
export type ToPeer = { type: "members" } | { type: "begin" } | { type: "end" };

/** Messages a peer sends to the orchestrator. */
export type FromPeer =
  | { type: "ready"; port: number; rss: number; heap: number }
  | { type: "skipped"; reason: string }
  | { type: "failed"; reason: string }
  | { type: "members"; count: number }
  | { type: "begun"; rss: number; heap: number }
  | { type: "ended"; cpuUs: number; maxBlockMs: number; rss: number };

/** Thrown by a peer's start function when the system cannot run here (the row is skipped). */
export class Skip extends Error {}

/**
 * The resident set size and the JavaScript heap in use after a full gc (gc is there because peers
 * run with --expose-gc). RSS also holds memory outside the heap (a native server's own), and the
 * heap's young generation, whose size V8 adapts to the allocation rate: several MB either way.
 */
function settled(): { rss: number; heap: number } {
  globalThis.gc?.();
  globalThis.gc?.();
  return { rss: process.memoryUsage.rss(), heap: process.memoryUsage().heapUsed };
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
          const memory = settled();
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
          send({ type: "begun", ...memory });
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
      send({ type: "ready", port: server.port, ...settled() });
    },
    (error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      process.exitCode = error instanceof Skip ? 0 : 1;
      // Disconnect (and so exit) only once the message is out.
      process.send?.(error instanceof Skip ? { type: "skipped", reason } : { type: "failed", reason }, () => process.disconnect?.());
    },
  );
}
