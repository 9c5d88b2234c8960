/**
 * `npm run bench:brokers`: RedisBroker's throughput. Two node processes share 10,000 channels of 4
 * members (2 on each node, counters without I/O) and both publish to every channel in turn; what
 * is measured is cross-node broadcasts per second (broadcasts a node received from the other),
 * against the ceiling `redis-benchmark -P 16` measures for PUBLISH of an envelope of the same size
 * on the same redis-server, in the same run, rounds interleaved, medians reported. CPU per
 * cross-node broadcast counts both nodes and redis-server.
 *
 * Flags: --quick (1,000 channels, 1 round of 1 s: prints only, writes nothing), --rounds R, --seconds S.
 */
import { type ChildProcess, execFile, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { fmt, machine, median, table, writeSection } from "./report.js";

const { values: flags } = parseArgs({
  options: { quick: { type: "boolean", default: false }, rounds: { type: "string" }, seconds: { type: "string" } },
});
const quick = flags.quick === true;
const CHANNELS = quick ? 1000 : 10_000;
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const seconds = Number(flags.seconds ?? (quick ? 1 : 5));
const PAYLOAD = 100;
/** The envelope of a 100-byte text broadcast to "c1234": 20 bytes of header, the channel, the payload. */
const ENVELOPE = 20 + "c1234".length + PAYLOAD;
const progress = (line: string): void => void process.stderr.write(`[bench:brokers] ${line}\n`);

interface NodeStats {
  sent: number;
  deliveries: number;
  cpuUs: number;
  published: number;
  unpublished: number;
  received: number;
  lost: number;
}

const dir = mkdtempSync(join(tmpdir(), "ws-channels-bench-"));
const socket = join(dir, "redis.sock");
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** Starts redis-server on a unix socket and waits until it accepts connections. */
async function startRedis(): Promise<ChildProcess> {
  const redis = spawn("redis-server", ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", dir]);
  children.push(redis);
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
    redis.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (/ready to accept connections/i.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return redis;
}

/** CPU time a process has used so far, in µs, from /proc (Linux). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime + stime, in clock ticks of 10 ms
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

/** Starts a node process and waits until its channels are subscribed. */
async function startNode(): Promise<ChildProcess> {
  const execArgv = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = fork(new URL("./brokers/node.js", import.meta.url), [socket, String(CHANNELS), String(PAYLOAD)], {
    stdio: "inherit",
    execArgv,
  });
  children.push(child);
  const [message] = (await once(child, "message")) as [{ ready?: boolean }];
  if (message.ready !== true) throw new Error("a node did not start");
  return child;
}

async function statsOf(child: ChildProcess): Promise<NodeStats> {
  const reply = once(child, "message");
  child.send({ op: "stats" });
  return ((await reply) as [NodeStats])[0];
}

interface Round {
  ceiling: number;
  crossNode: number;
  cpuPerBroadcastUs: number;
  redisCpuShare: number;
  lost: number;
  unpublished: number;
}

async function round(): Promise<Round> {
  const redis = await startRedis();
  const ceiling = await redisBenchmark();
  progress(`redis-benchmark -P 16 PUBLISH ${ENVELOPE} bytes: ${fmt(ceiling)} requests/s`);
  const nodes = [await startNode(), await startNode()];
  for (const node of nodes) node.send({ op: "start" });
  await sleep(500); // warm-up
  const before = await Promise.all(nodes.map(statsOf));
  const redisBefore = cpuOf(redis.pid as number);
  const started = performance.now();
  await sleep(seconds * 1000);
  const after = await Promise.all(nodes.map(statsOf));
  const elapsed = (performance.now() - started) / 1000;
  const redisCpu = cpuOf(redis.pid as number) - redisBefore;
  for (const node of nodes) node.send({ op: "stop" });
  const delta = (key: keyof NodeStats): number => after.reduce((sum, s, i) => sum + s[key] - (before[i] as NodeStats)[key], 0);
  const crossNode = delta("received") / elapsed;
  const cpu = delta("cpuUs") + redisCpu;
  const result: Round = {
    ceiling,
    crossNode,
    cpuPerBroadcastUs: cpu / delta("received"),
    redisCpuShare: redisCpu / cpu,
    lost: delta("lost"),
    unpublished: delta("unpublished"),
  };
  progress(
    `cross-node broadcasts/s: ${fmt(crossNode)} (${fmt(crossNode / ceiling)}x), lost ${result.lost}, unpublished ${result.unpublished}`,
  );
  for (const node of nodes) {
    node.send({ op: "exit" });
    await once(node, "exit");
  }
  redis.kill("SIGKILL");
  await once(redis, "exit");
  return result;
}

const results: Round[] = [];
for (let r = 0; r < rounds; r++) results.push(await round());
const m = (key: keyof Round): number => median(results.map((result) => result[key]));
const markdown = [
  `### Broker throughput (RedisBroker, 2 nodes)`,
  "",
  `${machine()}; ${CHANNELS.toLocaleString("en-US")} channels of 4 members (2 per node, counters), both nodes publishing ${PAYLOAD}-byte text to every channel in turn; ${rounds} round(s) of ${seconds} s, medians.`,
  "",
  table(
    [
      "channels",
      "cross-node broadcasts/s",
      `redis-benchmark -P 16 PUBLISH ${ENVELOPE} B/s`,
      "ratio",
      "CPU per cross-node broadcast",
      "redis-server share of CPU",
      "lost",
      "unpublished",
    ],
    [
      [
        CHANNELS.toLocaleString("en-US"),
        fmt(m("crossNode")),
        fmt(m("ceiling")),
        `${fmt(m("crossNode") / m("ceiling"), 2)}x`,
        `${fmt(m("cpuPerBroadcastUs"))} µs`,
        `${fmt(m("redisCpuShare") * 100, 2)}%`,
        results.reduce((sum, r) => sum + r.lost, 0),
        results.reduce((sum, r) => sum + r.unpublished, 0),
      ],
    ],
  ),
].join("\n");
console.log(markdown);
if (!quick) writeSection("brokers", markdown);
process.exit(0);
