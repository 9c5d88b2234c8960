/**
 * What every node of bench/brokers.ts shares, whatever system it runs (ws-channels, the RESP floor,
 * socket.io): the parent's commands over IPC and the pacing of the publishes. A node publishes to
 * its channels in turn, either as fast as a window of unanswered publishes allows (`rate` 0) or at
 * a fixed rate per second, a tick's share each 10 ms, until it has made `limit` publishes.
 */

/** One system under test, as a node runs it. */
export interface System {
  /** Publishes one broadcast of the payload to `channel`. */
  publish(channel: string): void;
  /** Publishes handed over and not yet answered by Redis (or dropped). */
  inFlight(): number;
  /** Broadcasts received from the other node, lost (gaps) and not published where the system counts them, and deliveries to members. */
  counts(): { received: number; lost: number; unpublished: number; deliveries: number };
  close(): Promise<void>;
}

/**
 * The most publishes a node leaves unanswered, or ahead of what it has received from the other
 * node (both nodes publish alike, so each is held to the pace at which the other's broadcasts
 * reach it: without that bound a node that publishes faster than it reads would have Redis close
 * its subscriber for falling behind), and the most it makes in one turn.
 */
const WINDOW = 4096;
const PER_TURN = 256;

/** Answers the parent's commands for `system`, whose channels are `names`, and says it is ready. */
export function serve(system: System, names: string[]): void {
  let sent = 0;
  let running = 0; // which run is going: a stopped one's timers end themselves
  const ahead = (): number => Math.max(system.inFlight(), sent - system.counts().received);
  const next = (): void => {
    system.publish(names[sent % names.length] as string);
    sent++;
  };
  const flat = (run: number): void => {
    if (run !== running) return;
    const room = Math.min(PER_TURN, WINDOW - ahead());
    for (let n = 0; n < room; n++) next();
    setImmediate(flat, run);
  };
  const paced = (run: number, rate: number, limit: number): void => {
    const start = performance.now();
    const first = sent;
    const timer = setInterval(() => {
      if (run !== running || sent - first >= limit) return clearInterval(timer);
      const due = first + Math.min(limit, Math.floor(((performance.now() - start) * rate) / 1000));
      const room = Math.min(due - sent, WINDOW - ahead());
      for (let n = 0; n < room; n++) next();
    }, 10);
  };
  process.on("message", (message: { op: string; rate?: number; limit?: number }) => {
    if (message.op === "start") {
      running++;
      if (message.rate) paced(running, message.rate, message.limit ?? Number.POSITIVE_INFINITY);
      else setImmediate(flat, running);
    } else if (message.op === "stop") {
      running++;
    } else if (message.op === "stats") {
      process.send?.({ sent, ...system.counts() });
    } else if (message.op === "exit") {
      void system.close().then(() => process.exit(0));
    }
  });
  process.send?.({ ready: true });
}

/** The node's arguments, as bench/brokers.ts passes them: where Redis is, how many channels, the payload's size. */
export function nodeArgs(): { path: string; names: string[]; payload: string } {
  const [path = "", channels = "1000", bytes = "100"] = process.argv.slice(2);
  return { path, names: Array.from({ length: Number(channels) }, (_, i) => `c${i}`), payload: "x".repeat(Number(bytes)) };
}
