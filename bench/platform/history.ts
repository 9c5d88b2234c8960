/*
 * History rows of `npm run bench:platform`: says per second into channels with and without
 * history, and a thousand clients recovering at once, on one process, on two cluster workers and
 * on two servers sharing a redis-server.
 */
import { type Client, closeAll, type Frame, openMany } from "./clients.js";
import { cpuNs, type RedisProcess, type Server, startRedis, startServer } from "./processes.js";
import { until } from "./until.js";

/** Where the servers run. */
export type Backend = "one process" | "two workers" | "two servers on Redis";
export const BACKENDS: Backend[] = ["one process", "two workers", "two servers on Redis"];

/** The servers of one run: one or two WebSocket URLs, every process to measure, and how to stop them. */
interface Nodes {
  urls: string[];
  serverPids: number[];
  redis: RedisProcess | undefined;
  stop(): void;
}

async function start(backend: Backend, args: string[]): Promise<Nodes> {
  const common = ["--max-messages-per-second", "1000000", ...args];
  const redis = backend === "two servers on Redis" ? await startRedis() : undefined;
  const servers: Server[] = [];
  try {
    if (redis === undefined) servers.push(await startServer(common, backend === "two workers" ? 2 : 1));
    else for (let i = 0; i < 2; i++) servers.push(await startServer([...common, "--redis", redis.path]));
  } catch (error) {
    for (const server of servers) server.stop();
    redis?.stop();
    throw error;
  }
  return {
    urls: servers.map((server) => `ws://127.0.0.1:${server.port}/`),
    serverPids: servers.flatMap((server) => server.pids),
    redis,
    stop() {
      for (const server of servers) server.stop();
      redis?.stop();
    },
  };
}

/** What one run of says measured. */
export interface SaysResult {
  saysPerSecond: number;
  /** CPU per say of every server process, and of redis-server (0 without), in µs. */
  serverCpuPerSayUs: number;
  redisCpuPerSayUs: number;
}

/**
 * `channels` channels of `members` members each (split over the nodes); the first member of each
 * channel, on the first node, says with 4 says in flight (the next once its own copy comes back),
 * for `seconds`; `historySize` 0 runs without history.
 */
export async function says(backend: Backend, historySize: number, seconds: number, channels = 100, members = 10): Promise<SaysResult> {
  const nodes = await start(backend, ["--history-size", String(historySize)]);
  const all: Client[] = [];
  try {
    const sayers = await openMany(nodes.urls[0] as string, channels);
    all.push(...sayers);
    let joined = 0;
    for (let n = 1; n < members; n++) {
      const others = await openMany(nodes.urls[n % nodes.urls.length] as string, channels);
      all.push(...others);
      others.forEach((client, c) => {
        client.onFrame = (frame) => {
          if (frame.joined === undefined) return;
          joined++;
          client.onFrame = undefined; // the says it gets cost this process nothing but their read
        };
        client.send({ join: `c${c}` });
      });
    }
    let said = 0;
    let running = false;
    sayers.forEach((sayer, c) => {
      sayer.onFrame = (frame: Frame) => {
        if (frame.joined !== undefined) joined++;
        else if (running) {
          said++;
          sayer.send({ say: said, to: `c${c}` });
        }
      };
      sayer.send({ join: `c${c}` });
    });
    await until(() => joined === channels * members, "every member to join");
    const cpu = cpuNs(nodes.serverPids);
    const redisCpu = nodes.redis === undefined ? 0 : cpuNs(nodes.redis.pids);
    const begin = performance.now();
    running = true;
    sayers.forEach((sayer, c) => {
      for (let w = 0; w < 4; w++) sayer.send({ say: w, to: `c${c}` });
    });
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    running = false;
    const elapsed = (performance.now() - begin) / 1000;
    const count = said;
    const serverCpu = cpuNs(nodes.serverPids) - cpu;
    const redisSpent = nodes.redis === undefined ? 0 : cpuNs(nodes.redis.pids) - redisCpu;
    return { saysPerSecond: count / elapsed, serverCpuPerSayUs: serverCpu / 1000 / count, redisCpuPerSayUs: redisSpent / 1000 / count };
  } finally {
    await closeAll(all);
    nodes.stop();
  }
}

/** What one recovery run measured. */
export interface RecoveryResult {
  /** From the first recovering join sent until every client has its missed says, in ms. */
  wallMs: number;
  serverCpuMs: number;
  redisCpuMs: number;
}

/**
 * `clients` members of one channel (history on) leave while a publisher says `missed` more; they
 * come back (each on the other node where there are two) and all send their recovering join at once.
 */
export async function recovery(backend: Backend, clients: number, missed: number): Promise<RecoveryResult> {
  const nodes = await start(backend, ["--history-size", String(missed * 2)]);
  const urls = nodes.urls;
  const all: Client[] = [];
  try {
    const [publisher] = await openMany(urls[0] as string, 1);
    all.push(publisher as Client);
    let last: Frame = {};
    (publisher as Client).onFrame = (frame) => {
      last = frame;
    };
    (publisher as Client).send({ join: "r" });
    await until(() => last.joined === "r", "the publisher's join");
    const position = last as { epoch: string; offset: number };
    const members = (await Promise.all(urls.map((url) => openMany(url, clients / urls.length)))).flat();
    let joined = 0;
    for (const member of members) {
      member.onFrame = () => joined++;
      member.send({ join: "r" });
    }
    await until(() => joined === members.length, "every member to join");
    await closeAll(members);
    for (let i = 1; i <= missed; i++) (publisher as Client).send({ say: i, to: "r" });
    await until(() => last.offset === position.offset + missed, "the publisher's own last say");
    const back = (await Promise.all(urls.map((_, i) => openMany(urls[(i + 1) % urls.length] as string, clients / urls.length)))).flat();
    all.push(...back);
    let recovered = 0;
    for (const client of back) {
      client.onFrame = (frame) => {
        if (frame.joined === undefined) return;
        if (frame.recovered !== true || (frame.missed as unknown[]).length !== missed)
          throw new Error(`not recovered: ${JSON.stringify(frame).slice(0, 200)}`);
        recovered++;
      };
    }
    const cpu = cpuNs(nodes.serverPids);
    const redisCpu = nodes.redis === undefined ? 0 : cpuNs(nodes.redis.pids);
    const begin = performance.now();
    for (const client of back) client.send({ join: "r", recover: { offset: position.offset, epoch: position.epoch } });
    await until(() => recovered === back.length, "every client to recover");
    return {
      wallMs: performance.now() - begin,
      serverCpuMs: (cpuNs(nodes.serverPids) - cpu) / 1e6,
      redisCpuMs: nodes.redis === undefined ? 0 : (cpuNs(nodes.redis.pids) - redisCpu) / 1e6,
    };
  } finally {
    await closeAll(all);
    nodes.stop();
  }
}
