/* The IPC messages between the orchestrator (bench/e2e.ts) and the load generator (bench/e2e/loadgen.ts). */

/** Orchestrator -> load generator. */
export type ToLoadgen =
  | {
      type: "connect";
      port: number;
      clients: number;
      socketIo: boolean;
      concurrency: number;
      timeoutMs: number;
      /** Many rooms: client i joins room floor(i / roomSize), and one more client is the control connection. */
      roomSize?: number;
    }
  | {
      type: "run";
      messages: number;
      window: number;
      burst: number;
      stallMs: number;
      maxMs: number;
      /** Fixed rate, in messages per second: message i goes out at i / rate s, whatever has arrived. */
      rate?: number;
    }
  | { type: "close" };

/** What the load generator measured over one burst. */
export interface Burst {
  expected: number; // C x M
  delivered: number; // distinct (client, seq) pairs received
  lost: number; // expected - delivered
  outOfOrder: number; // a seq lower than the highest that client had seen
  duplicates: number;
  closed: number; // connections that closed during the burst
  seconds: number; // first send to last delivery
  perSecond: number; // delivered / seconds
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  misrouted: number; // messages a client got for a room it is not in
  cpuUs: number; // the load generator's own CPU time (user + system) over the burst
  stalled: boolean; // stopped by the no-progress or overall time limit, not by completion
}

/** Load generator -> orchestrator. */
export type FromLoadgen =
  | { type: "connected"; ms: number }
  | { type: "done"; burst: Burst }
  | { type: "closed" }
  | { type: "failed"; reason: string };
