/*
 * Presence rows of `npm run bench:platform`: a herd of joins into one channel watched by
 * listeners, and churn in a channel at --presence-max members where every member listens.
 */
import { type Client, closeAll, type Frame, openMany } from "./clients.js";
import { cpuNs, startServer } from "./processes.js";
import { until } from "./until.js";

/** A listener's view of a channel's presence: the refs it holds, and the diff frames it got. */
class PresenceList {
  readonly refs = new Set<string>();
  diffs = 0;

  constructor(client: Client) {
    client.onFrame = (frame) => this.apply(frame);
  }

  private apply(frame: Frame): void {
    const list = (frame.presence ?? frame.members) as { ref: string }[] | undefined;
    if (frame.joined !== undefined && Array.isArray(list)) for (const entry of list) this.refs.add(entry.ref);
    if (typeof frame.presence === "string" && Array.isArray(frame.members)) {
      this.refs.clear();
      for (const entry of frame.members as { ref: string }[]) this.refs.add(entry.ref);
    }
    if (Array.isArray(frame.joins)) {
      this.diffs++;
      for (const entry of frame.joins as { ref: string }[]) this.refs.add(entry.ref);
      for (const ref of frame.leaves as string[]) this.refs.delete(ref);
    }
  }
}

/** What one herd run measured. */
export interface HerdResult {
  /** Diff frames each listener received for the herd: the median and the most. */
  framesMedian: number;
  framesMax: number;
  /** From the first join sent until every listener's list holds every member, in ms. */
  wallMs: number;
  /** CPU of every server process per join, in µs. */
  cpuPerJoinUs: number;
}

/**
 * `joiners` connections join channel "herd" back to back (sent in one turn of this process) while
 * `listeners` members with `"presence": true` watch; on `workers` processes.
 */
export async function herd(joiners: number, listeners: number, workers: number): Promise<HerdResult> {
  const server = await startServer(["--presence-max", String(joiners * 2)], workers);
  const url = `ws://127.0.0.1:${server.port}/`;
  try {
    const watching = await openMany(url, listeners);
    const lists = watching.map((client) => new PresenceList(client));
    for (const client of watching) client.send({ join: "herd", presence: true });
    await until(() => lists.every((list) => list.refs.size === listeners), "the listeners to see each other");
    const crowd = await openMany(url, joiners);
    for (const list of lists) list.diffs = 0;
    const cpu = cpuNs(server.pids);
    const start = performance.now();
    for (const client of crowd) client.send({ join: "herd" });
    await until(() => lists.every((list) => list.refs.size === listeners + joiners), "every listener to see the herd");
    const wallMs = performance.now() - start;
    const cpuPerJoinUs = (cpuNs(server.pids) - cpu) / 1000 / joiners;
    const frames = lists.map((list) => list.diffs).sort((a, b) => a - b);
    await closeAll([...watching, ...crowd]);
    return { framesMedian: frames[frames.length >> 1] as number, framesMax: frames.at(-1) as number, wallMs, cpuPerJoinUs };
  } finally {
    server.stop();
  }
}

/** What one churn run measured. */
export interface ChurnResult {
  changes: number;
  /** CPU of every server process per join or leave, above what the same server spends idle, in µs. */
  cpuPerChangeUs: number;
  /** That per listener a diff went to. */
  cpuPerDeliveryUs: number;
}

/**
 * A channel at `members` members, every one listening (`"presence": true`); for `seconds`, 1% of
 * them is replaced each second (a member leaves, another connection joins), spread evenly.
 */
export async function churn(members: number, seconds: number, workers: number): Promise<ChurnResult> {
  const server = await startServer(["--presence-max", String(members)], workers);
  const url = `ws://127.0.0.1:${server.port}/`;
  const perSecond = Math.max(1, Math.round(members / 100));
  try {
    const clients = await openMany(url, members);
    const spare = await openMany(url, perSecond * seconds);
    const lists = clients.map((client) => new PresenceList(client));
    for (const client of clients) client.send({ join: "room", presence: true });
    await until(() => lists.every((list) => list.refs.size === members), "every member to see every member");
    const idleCpu = cpuNs(server.pids);
    const idleStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const idlePerMs = (cpuNs(server.pids) - idleCpu) / (performance.now() - idleStart);
    const cpu = cpuNs(server.pids);
    const start = performance.now();
    const interval = 1000 / perSecond;
    for (let i = 0; i < perSecond * seconds; i++) {
      (clients[i] as Client).send({ leave: "room" });
      (spare[i] as Client).send({ join: "room", presence: true }); // its frames are not even parsed here
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
    // what the server spends idle (timers, heartbeats) over the same time is not the churn's
    const busy = cpuNs(server.pids) - cpu - idlePerMs * (performance.now() - start);
    const changes = 2 * perSecond * seconds;
    await closeAll([...clients, ...spare]);
    const cpuPerChangeUs = busy / 1000 / changes;
    return { changes, cpuPerChangeUs, cpuPerDeliveryUs: cpuPerChangeUs / members };
  } finally {
    server.stop();
  }
}
