/*
 * `npm run bench:e2e`: ws-channels against a naive ws server, socket.io rooms and uWebSockets.js
 * pub/sub, over real sockets on 127.0.0.1. Every run is a fresh server process (bench/peers/*.ts)
 * and a fresh load-generator process (bench/e2e/loadgen.ts); runs are interleaved, system after
 * system, round after round, per C, and medians are reported.
 *
 * Two scenarios: steady (the publisher sends one message at a time, W in flight) and bursty (it
 * sends 8 messages in one turn and one write, the next 8 once all clients have those).
 *
 * Flags: --quick (C = 1,000, one round, small M; prints only, writes nothing; other flags given
 * with it override those defaults), --sizes 1000,5000, --scenarios steady,bursty,
 * --rounds R, --window W (messages in flight), --deliveries N (C x M per run, so M = N / C).
 * E2E_PEER_ARGS in the environment adds Node flags to every server process (a CPU profile, say).
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { lineChart } from "./e2e/chart.js";
import { fileLimits, killAll } from "./e2e/child.js";
import { type Measured, type Outcome, runOnce, type System } from "./e2e/run.js";
import { fmt, machine, median, table, writeSection } from "./report.js";

const SYSTEMS: System[] = [
  { name: "ws-channels", peer: "ws-channels.js", socketIo: false },
  { name: "naive ws", peer: "naive-ws.js", socketIo: false },
  { name: "socket.io", peer: "socket-io.js", socketIo: true },
  { name: "uWebSockets.js", peer: "uws.js", socketIo: false },
  // the same server on two nodes, clients split over them; CPU counts every process, redis-server too
  { name: "ws-channels 2 workers", peer: "ws-channels-cluster.js", socketIo: false },
  { name: "ws-channels 2 Redis nodes", peer: "ws-channels-redis.js", socketIo: false },
];
const OURS = SYSTEMS[0]!.name;
const CHART = new URL("../../bench/e2e.svg", import.meta.url);

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    sizes: { type: "string" },
    rounds: { type: "string" },
    window: { type: "string", default: "8" },
    deliveries: { type: "string" },
    scenarios: { type: "string", default: "steady,bursty" },
  },
});
/** A flag that must be a whole number >= 1. */
function count(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a whole number >= 1, got ${value}`);
  return n;
}
const quick = flags.quick === true;
// --quick changes the defaults (and writes nothing); flags given with it still win, for quick experiments.
const sizes = (flags.sizes ?? (quick ? "1000" : "1000,5000,10000")).split(",").map((s) => count("sizes", s.trim()));
const rounds = count("rounds", flags.rounds ?? (quick ? "1" : "3"));
const window = count("window", flags.window ?? "8");
const deliveries = count("deliveries", flags.deliveries ?? (quick ? "100000" : "1000000"));
const messagesFor = (clients: number): number => Math.max(1, Math.round(deliveries / clients));
const SCENARIOS = [
  {
    name: "steady",
    burst: 1,
    about: `client 0 publishes one message at a time with a window of ${window} (message i goes out once every client has message i-${window})`,
  },
  {
    name: "bursty",
    burst: 8,
    about: "client 0 publishes 8 messages in one turn and one write, and the next 8 once every client has those",
  },
];
const scenarios = (flags.scenarios ?? "steady,bursty").split(",").map((name) => {
  const scenario = SCENARIOS.find((s) => s.name === name.trim());
  if (!scenario) throw new RangeError(`--scenarios takes steady and bursty, got ${name}`);
  return scenario;
});

// Kill every child on the way out, however we leave.
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

// Each process holds C sockets plus a few dozen other descriptors. Node raises its own soft limit
// to the hard limit at startup, so what this process sees is what a forked child gets; if that is
// too low, the children start through sh's ulimit, which can go above the hard limit only with
// privilege (root here), and otherwise makes the run fail with sh's own message.
const needed = Math.max(...sizes) + 1024;
const limits = fileLimits();
const fileLimit = limits.soft < needed ? needed : undefined;
if (fileLimit)
  console.error(
    `bench:e2e: open-file limit ${limits.soft} (hard ${limits.hard}) < ${needed}: children start through sh -c "ulimit -n ${needed}; exec node ..."`,
  );

const outcomes = new Map<string, Outcome[]>(); // `${system}@${C}` -> one outcome per round
const skipped = new Map<string, string>(); // system -> why it cannot run here
const key = (system: string, clients: number, scenario: string): string => `${scenario}:${system}@${clients}`;

for (const scenario of scenarios) {
  for (const clients of sizes) {
    const messages = messagesFor(clients);
    for (let round = 1; round <= rounds; round++) {
      for (const system of SYSTEMS) {
        if (skipped.has(system.name)) continue;
        process.stderr.write(`[e2e] ${scenario.name}, ${system.name} C=${fmt(clients)} M=${fmt(messages)} round ${round}/${rounds} ... `);
        await runAndRecord(system, clients, messages, scenario);
      }
    }
  }
}

async function runAndRecord(system: System, clients: number, messages: number, scenario: { name: string; burst: number }): Promise<void> {
  const started = Date.now();
  const timeoutMs = 90_000 + (clients * messages) / 20; // connect phase, then at least 20,000 deliveries/s
  const outcome = await runOnce(system, { clients, messages, window, burst: scenario.burst, timeoutMs, fileLimit });
  const list = outcomes.get(key(system.name, clients, scenario.name)) ?? [];
  outcomes.set(key(system.name, clients, scenario.name), [...list, outcome]);
  if (!outcome.ok && outcome.skipped) skipped.set(system.name, outcome.reason);
  const took = `(${((Date.now() - started) / 1000).toFixed(1)} s)`;
  if (outcome.ok) {
    const { burst, serverCpuUs } = outcome.value;
    const losses = burst.lost || burst.outOfOrder ? `, lost ${burst.lost}, out of order ${burst.outOfOrder}` : "";
    process.stderr.write(
      `${fmt(burst.perSecond)} deliveries/s, server CPU ${(serverCpuUs / 1e6).toFixed(2)} s, load generator CPU ${(burst.cpuUs / 1e6).toFixed(2)} s${losses} ${took}\n`,
    );
  } else {
    process.stderr.write(`${outcome.skipped ? "skipped" : "FAILED"}: ${outcome.reason} ${took}\n`);
  }
}

// Medians per (system, C); lost and out of order are summed over the rounds, so one bad round shows.
const header = [
  "system",
  "C",
  "M",
  "deliveries/s",
  "p50 ms",
  "p99 ms",
  "lost",
  "out of order",
  "server CPU µs/delivery",
  "server CPU s",
  "load-gen CPU s",
  "burst s",
  "server RSS/conn KB",
  "max loop block ms",
  "runs ok",
];
const medians = new Map<string, { perSecond: number; cpuPerDelivery: number }>();

/** One scenario's results table, ratio table and notes, as markdown. */
function scenarioTables(scenario: { name: string; about: string }): string {
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  for (const clients of sizes) {
    for (const system of SYSTEMS) {
      const list = outcomes.get(key(system.name, clients, scenario.name)) ?? [];
      const ok = list.flatMap((o) => (o.ok ? [o.value] : []));
      const first = [system.name, fmt(clients), fmt(messagesFor(clients))];
      if (ok.length === 0) {
        const why = skipped.has(system.name)
          ? `skipped: ${skipped.get(system.name)}`
          : `failed: ${list.map((o) => (o.ok ? "" : o.reason)).join("; ")}`;
        rows.push([...first, why, ...header.slice(4, -1).map(() => "-"), `0/${list.length}`]);
        continue;
      }
      for (const o of list) if (!o.ok) notes.push(`${system.name}, C = ${fmt(clients)}: a run failed: ${o.reason}`);
      const med = (f: (m: Measured) => number): number => median(ok.map(f));
      const perSecond = med((m) => m.burst.perSecond);
      const cpuPerDelivery = med((m) => m.serverCpuUs / Math.max(1, m.burst.delivered));
      medians.set(key(system.name, clients, scenario.name), { perSecond, cpuPerDelivery });
      const sum = (f: (m: Measured) => number): number => ok.reduce((total, m) => total + f(m), 0);
      rows.push([
        ...first,
        fmt(perSecond),
        fmt(med((m) => m.burst.p50Ms)),
        fmt(med((m) => m.burst.p99Ms)),
        sum((m) => m.burst.lost),
        sum((m) => m.burst.outOfOrder),
        fmt(cpuPerDelivery),
        fmt(med((m) => m.serverCpuUs / 1e6)),
        fmt(med((m) => m.burst.cpuUs / 1e6)),
        fmt(med((m) => m.burst.seconds)),
        fmt(med((m) => m.rssPerConnectionKB)),
        fmt(med((m) => m.maxBlockMs)),
        `${ok.length}/${list.length}`,
      ]);
      const duplicates = sum((m) => m.burst.duplicates);
      const closed = sum((m) => m.burst.closed);
      if (duplicates || closed)
        notes.push(`${system.name}, C = ${fmt(clients)}: ${duplicates} duplicate deliveries, ${closed} connections closed during bursts`);
    }
  }

  // ws-channels over each peer: above 1 is better for deliveries/s, below 1 is better for CPU per delivery.
  const ratioRows: string[][] = [];
  for (const clients of sizes) {
    const ours = medians.get(key(OURS, clients, scenario.name));
    for (const system of SYSTEMS.slice(1)) {
      const peer = medians.get(key(system.name, clients, scenario.name));
      const ratio = (a: number | undefined, b: number | undefined): string => (a && b ? `${(a / b).toFixed(2)}x` : "-");
      ratioRows.push([
        fmt(clients),
        system.name,
        ratio(ours?.perSecond, peer?.perSecond),
        ratio(ours?.cpuPerDelivery, peer?.cpuPerDelivery),
      ]);
    }
  }
  return [
    `### ${scenario.name[0]!.toUpperCase()}${scenario.name.slice(1)}: ${scenario.about}`,
    "",
    table(header, rows),
    "",
    "ws-channels over each peer (deliveries/s: above 1x is better; server CPU per delivery: below 1x is better):",
    "",
    table(["C", "peer", "deliveries/s ratio", "server CPU/delivery ratio"], ratioRows),
    ...(notes.length ? ["", ...notes.map((n) => `- ${n}`)] : []),
  ].join("\n");
}

const command = `npm run bench:e2e${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
const markdown = [
  "## End to end: real sockets on 127.0.0.1",
  "",
  machine(),
  "",
  `\`${command}\`: C clients in one room, client 0 publishes M messages of about 100 bytes of JSON; ` +
    `a fresh server process and load-generator process per run; ` +
    `${rounds} round(s) interleaved per C; medians of the rounds, except lost and out of order, which are summed over the rounds. ` +
    "Server CPU is user + system time of the server process over the burst; compare load-gen CPU s with burst s to see whether the load generator was the limit.",
  ...scenarios.flatMap((scenario) => ["", scenarioTables(scenario)]),
].join("\n");
console.log(markdown);

if (!quick) {
  writeSection("e2e", `${markdown}\n\n![deliveries per second against C](e2e.svg)`);
  const series = SYSTEMS.map((system) => ({
    name: system.name,
    points: sizes.flatMap((c): [number, number][] => {
      const m = medians.get(key(system.name, c, "steady"));
      return m ? [[c, m.perSecond]] : [];
    }),
  })).filter((s) => s.points.length > 0);
  writeFileSync(
    CHART,
    lineChart(series, {
      title: "End to end, steady: deliveries per second (median)",
      x: "clients in the room (C)",
      y: "deliveries per second",
    }),
  );
  console.error("bench:e2e: wrote bench/RESULTS.md (section e2e) and bench/e2e.svg");
}
