/**
 * `npm run bench:brokers`: what a broadcast that crosses nodes costs. Two node processes share
 * 10,000 channels of 4 members (2 on each node, counters without I/O) and both publish a 100-byte
 * text to every channel in turn, through one redis-server. Three systems, run in the same rounds,
 * each on a fresh redis-server:
 * - `ws-channels`: a Channels on a RedisBroker per node (bench/brokers/node.ts);
 * - `floor`: hand-written RESP over `net` carrying the same envelopes (bench/brokers/floor.ts),
 *   the least a Node process can spend;
 * - `socket.io`: socket.io 4 with @socket.io/redis-adapter (bench/brokers/socketio.ts).
 * Each run has two phases. A fixed amount of work: each node publishes `--rate` a second (default
 * 5,000) for `--seconds`, and the phase ends once the other node has received them all (or 30 s
 * more have passed), for the CPU per cross-node broadcast (both nodes and redis-server, from
 * /proc): a node that falls behind on a busy machine still does the same work. Then as fast as a
 * window of 4,096 unanswered publishes per node allows, for cross-node broadcasts per second. The ceiling
 * `redis-benchmark -P 16` measures for PUBLISH of an envelope-sized message is printed beside.
 *
 * Flags: --quick (1,000 channels, 1 round, 1 s phases: prints only, writes nothing), --rounds R,
 * --seconds S, --rate N, --channels N, --systems a,b, --fixed-only (the fixed phase alone, for a
 * profile of it: its figures then stand in the other's columns too); a run with either prints only.
 * BENCH_NODE_ARGS adds Node flags to the node processes (`--cpu-prof --cpu-prof-dir=DIR`, say).
 */
import { type ChildProcess, execFile, fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { redisSocket, startRedis } from "./redis.js";
import { fmt, machine, median, table, writeSection } from "./report.js";

const SYSTEMS = { "ws-channels": "node.js", floor: "floor.js", "socket.io": "socketio.js" } as const;
type System = keyof typeof SYSTEMS;

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    seconds: { type: "string" },
    rate: { type: "string" },
    channels: { type: "string" },
    systems: { type: "string" },
    "fixed-only": { type: "boolean", default: false },
  },
});
const quick = flags.quick === true;
const CHANNELS = Number(flags.channels ?? (quick ? 1000 : 10_000));
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const seconds = Number(flags.seconds ?? (quick ? 1 : 5));
const RATE = Number(flags.rate ?? 5000);
const systems = (flags.systems?.split(",") ?? Object.keys(SYSTEMS)) as System[];
for (const system of systems) if (!(system in SYSTEMS)) throw new Error(`unknown system ${system}: ${Object.keys(SYSTEMS).join(", ")}`);
const PAYLOAD = 100;
/** The envelope of a 100-byte text broadcast to "c1234": 20 bytes of header, the channel, the payload. */
const ENVELOPE = 20 + "c1234".length + PAYLOAD;
const progress = (line: string): void => void process.stderr.write(`[bench:brokers] ${line}\n`);

const dir = mkdtempSync(join(tmpdir(), "ws-channels-bench-"));
const socket = redisSocket(dir);
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** CPU time a process has used so far, in µs, from /proc (Linux): in all, or in the kernel (`system`). */
function cpuOf(pid: number, system = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (((system ? 0 : Number(fields[11])) + Number(fields[12])) * 1e6) / 100; // utime + stime, in clock ticks of 10 ms
}

/** `redis-benchmark -P 16` PUBLISH of an envelope-sized message: requests per second. */
function redisBenchmark(): Promise<number> {
  const requests = quick ? 200_000 : 1_000_000;
  const args = ["-s", socket, "-P", "16", "-n", String(requests), "-q", "PUBLISH", "ws-channels:s:bench", "x".repeat(ENVELOPE)];
  return new Promise((resolve, reject) => {
    execFile("redis-benchmark", args, { timeout: 120_000 }, (error, stdout) => {
      const match = /([\d.]+) requests per second/.exec(stdout);
      if (error || match === null) reject(error ?? new Error(`unexpected redis-benchmark output: ${stdout}`));
      else resolve(Number(match[1]));
    });
  });
}

/** Starts a node process of `system` and waits until its channels are subscribed. */
async function startNode(system: System): Promise<ChildProcess> {
  const execArgv = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = fork(new URL(`./brokers/${SYSTEMS[system]}`, import.meta.url), [socket, String(CHANNELS), String(PAYLOAD)], {
    stdio: "inherit",
    execArgv,
  });
  children.push(child);
  const [message] = (await once(child, "message")) as [{ ready?: boolean }];
  if (message.ready !== true) throw new Error(`a ${system} node did not start`);
  return child;
}

interface NodeStats {
  sent: number;
  received: number;
  lost: number;
  unpublished: number;
}

async function statsOf(child: ChildProcess): Promise<NodeStats> {
  const reply = once(child, "message");
  child.send({ op: "stats" });
  return ((await reply) as [NodeStats])[0];
}

interface Phase {
  /** What share of the nodes' CPU was spent in the kernel. */
  nodesSystemShare: number;
  /** Cross-node broadcasts per second: broadcasts a node received from the other, both nodes. */
  crossNode: number;
  cpuPerBroadcastUs: number;
  redisCpuShare: number;
  lost: number;
  unpublished: number;
}

/**
 * Runs the nodes at `rate` per node (0: as fast as the window allows) for `seconds`, after a
 * warm-up; at a rate, until each node's `rate * seconds` publishes have all been received or lost.
 */
async function phase(nodes: ChildProcess[], redis: ChildProcess, rate: number): Promise<Phase> {
  const limit = rate * seconds;
  if (rate > 0) {
    for (const node of nodes) node.send({ op: "start", rate, limit: rate / 2 });
    await drained(nodes, rate, 10_000);
  } else {
    for (const node of nodes) node.send({ op: "start", rate });
    await sleep(quick ? 300 : 1000); // warm-up
  }
  const pids = [redis, ...nodes].map((child) => child.pid as number);
  const before = await Promise.all(nodes.map(statsOf));
  const cpuBefore = pids.map((pid) => cpuOf(pid));
  const systemBefore = pids.map((pid) => cpuOf(pid, true));
  const started = performance.now();
  for (const node of nodes) if (rate > 0) node.send({ op: "start", rate, limit });
  if (rate > 0)
    await drained(nodes, before.reduce((sum, s) => sum + s.received + s.lost, 0) + nodes.length * limit, seconds * 1000 + 30_000);
  else await sleep(seconds * 1000);
  const cpu = pids.map((pid, i) => cpuOf(pid) - (cpuBefore[i] as number));
  const system = pids.map((pid, i) => cpuOf(pid, true) - (systemBefore[i] as number));
  const after = await Promise.all(nodes.map(statsOf));
  const elapsed = (performance.now() - started) / 1000;
  for (const node of nodes) node.send({ op: "stop" });
  const delta = (key: keyof NodeStats): number => after.reduce((sum, s, i) => sum + s[key] - (before[i] as NodeStats)[key], 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  const nodesCpu = total - (cpu[0] as number);
  return {
    nodesSystemShare: (system.reduce((a, b) => a + b, 0) - (system[0] as number)) / nodesCpu,
    crossNode: delta("received") / elapsed,
    cpuPerBroadcastUs: total / delta("received"),
    redisCpuShare: (cpu[0] as number) / total,
    lost: delta("lost"),
    unpublished: delta("unpublished"),
  };
}

/** Waits until the nodes together have received (or counted lost) `total` broadcasts, polling every 50 ms, at most `ms`. */
async function drained(nodes: ChildProcess[], total: number, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const stats = await Promise.all(nodes.map(statsOf));
    if (stats.reduce((sum, s) => sum + s.received + s.lost, 0) >= total) return;
    await sleep(50);
  }
  progress(`not every broadcast arrived within ${ms} ms`);
}

interface Run {
  fixed: Phase;
  max: Phase;
}

async function run(system: System): Promise<Run> {
  const redis = await startRedis(dir, (child) => children.push(child));
  const nodes = [await startNode(system), await startNode(system)];
  const fixed = await phase(nodes, redis, RATE);
  const max = flags["fixed-only"] === true ? fixed : await phase(nodes, redis, 0);
  progress(
    `${system}: ${fmt(fixed.cpuPerBroadcastUs)} µs CPU per cross-node broadcast at ${fmt(RATE)}/s per node (${fmt(fixed.crossNode)}/s crossed); ` +
      `${fmt(max.crossNode)} cross-node broadcasts/s at most (${fmt(max.cpuPerBroadcastUs)} µs); redis-server ${fmt(fixed.redisCpuShare * 100, 2)}%, the nodes' kernel share ${fmt(fixed.nodesSystemShare * 100, 2)}%`,
  );
  for (const node of nodes) {
    node.send({ op: "exit" });
    await once(node, "exit");
  }
  redis.kill("SIGKILL");
  await once(redis, "exit");
  return { fixed, max };
}

const ceilings: number[] = [];
const runs = new Map<System, Run[]>(systems.map((system) => [system, []]));
for (let r = 0; r < rounds; r++) {
  const redis = await startRedis(dir, (child) => children.push(child));
  ceilings.push(await redisBenchmark());
  progress(`round ${r + 1}: redis-benchmark -P 16 PUBLISH ${ENVELOPE} bytes: ${fmt(ceilings.at(-1) as number)} requests/s`);
  redis.kill("SIGKILL");
  await once(redis, "exit");
  for (const system of systems) runs.get(system)?.push(await run(system));
}

const m = (system: System, which: keyof Run, key: keyof Phase): number => median((runs.get(system) ?? []).map((r) => r[which][key]));
const sum = (system: System, key: "lost" | "unpublished"): number =>
  (runs.get(system) ?? []).reduce((total, r) => total + r.fixed[key] + r.max[key], 0);
const ratio = (value: number, to: number): string => (Number.isFinite(to) && to > 0 ? `${fmt(value / to, 3)}x` : "-");
const has = (system: System): boolean => systems.includes(system);
const floorCpu = has("floor") ? m("floor", "fixed", "cpuPerBroadcastUs") : Number.NaN;
const socketIo = has("socket.io") ? m("socket.io", "max", "crossNode") : Number.NaN;
const markdown = [
  `### Broker throughput (2 nodes through one redis-server)`,
  "",
  `${machine()}; ${CHANNELS.toLocaleString("en-US")} channels of 4 members (2 per node, counters), both nodes publishing ${PAYLOAD}-byte text to every channel in turn; ${rounds} round(s), phases of ${seconds} s, medians. CPU counts both nodes and redis-server. \`redis-benchmark -P 16\` PUBLISH of ${ENVELOPE} bytes on the same machine: ${fmt(median(ceilings))} a second.`,
  "",
  table(
    [
      "system",
      `CPU per cross-node broadcast at ${fmt(RATE)}/s per node`,
      "ratio to floor",
      "redis-server share",
      "cross-node broadcasts/s, at most",
      "ratio to socket.io",
      "CPU per cross-node broadcast at most",
      "lost",
      "unpublished",
    ],
    systems.map((system) => [
      system,
      `${fmt(m(system, "fixed", "cpuPerBroadcastUs"))} µs`,
      ratio(m(system, "fixed", "cpuPerBroadcastUs"), floorCpu),
      `${fmt(m(system, "fixed", "redisCpuShare") * 100, 2)}%`,
      fmt(m(system, "max", "crossNode")),
      ratio(m(system, "max", "crossNode"), socketIo),
      `${fmt(m(system, "max", "cpuPerBroadcastUs"))} µs`,
      system === "ws-channels" ? sum(system, "lost") : "-",
      system === "ws-channels" ? sum(system, "unpublished") : "-",
    ]),
  ),
].join("\n");
console.log(markdown);
if (!quick && flags.systems === undefined && flags["fixed-only"] !== true) writeSection("brokers", markdown);
process.exit(0);
