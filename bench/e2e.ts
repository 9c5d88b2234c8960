/*
 * `npm run bench:e2e`: ws-channels against a naive ws server, socket.io rooms and uWebSockets.js
 * pub/sub, and the floor of Node's own write path, over real sockets on 127.0.0.1. Every run is a
 * fresh server process (bench/peers/*.ts) and a fresh load-generator process
 * (bench/e2e/loadgen.ts); runs are interleaved, system after system, round after round, per C,
 * and medians are reported.
 *
 * Scenarios (bench/e2e/scenarios.ts): steady (the publisher sends one message at a time, W in
 * flight), bursty (8 messages in one turn and one write, the next 8 once all clients have those),
 * rooms-4 and rooms-10 (C clients in many small rooms, at the largest C only), latency (a
 * fixed rate of half the naive server's steady deliveries/s, or --rate deliveries/s).
 *
 * Flags: --quick (C = 1,000, one round, small M; prints only, writes nothing; other flags given
 * with it override those defaults), --sizes 1000,5000, --scenarios steady,bursty,
 * --rounds R, --window W (messages in flight), --deliveries N (C x M per run, so M = N / C),
 * --rate N (deliveries/s of the latency scenario when the naive server's steady run is not in this
 * invocation; default 45,000, half of what it sustained in bench/RESULTS.md), --seconds S (latency run),
 * --systems ws-channels,uWebSockets.js (only those; a full run without it writes RESULTS.md).
 * E2E_PEER_ARGS in the environment adds Node flags to every server process (a CPU profile, say);
 * E2E_PEER_CPUS and E2E_LOADGEN_CPUS ("0", "1") pin the server processes and the load generator (taskset).
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { lineChart } from "./e2e/chart.js";
import { fileLimits, killAll } from "./e2e/child.js";
import { type Outcome, runOnce, type System } from "./e2e/run.js";
import { scenarios as allScenarios, type Scenario, SYSTEMS } from "./e2e/scenarios.js";
import { scenarioTables } from "./e2e/tables.js";
import { fmt, machine, writeSection } from "./report.js";

const CHART = new URL("../../bench/e2e.svg", import.meta.url);

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    sizes: { type: "string" },
    rounds: { type: "string" },
    window: { type: "string", default: "8" },
    deliveries: { type: "string" },
    scenarios: { type: "string" },
    rate: { type: "string" },
    seconds: { type: "string" },
    systems: { type: "string" },
  },
});
/** --systems "ws-channels,uWebSockets.js": run only those (for profiling and quick checks). */
const chosen = flags.systems?.split(",").map((name) => name.trim());
for (const name of chosen ?? []) {
  if (!SYSTEMS.some((system) => system.name === name))
    throw new RangeError(`--systems takes ${SYSTEMS.map((s) => s.name).join(", ")}; got ${name}`);
}
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
const latencySeconds = count("seconds", flags.seconds ?? (quick ? "2" : "8"));
const defaultRate = count("rate", flags.rate ?? "45000");
const SCENARIOS = allScenarios(window);
const scenarios = (flags.scenarios?.split(",") ?? SCENARIOS.map((s) => s.name)).map((name) => {
  const scenario = SCENARIOS.find((s) => s.name === name.trim());
  if (!scenario) throw new RangeError(`--scenarios takes ${SCENARIOS.map((s) => s.name).join(", ")}; got ${name}`);
  return scenario;
});
/** The clients of a scenario's runs: many rooms run at the largest C only. */
const sizesOf = (scenario: Scenario): number[] => (scenario.roomSize === undefined ? sizes : [Math.max(...sizes)]);
/** The latency scenario's rate in deliveries/s: half the naive server's steady median at C in this run, else --rate. */
function rateAt(clients: number): number {
  const naive = medians.get(key("naive ws", clients, "steady"));
  return naive === undefined || flags.rate !== undefined ? defaultRate : naive.perSecond / 2;
}
/** M for a run: N / C, or for the latency scenario what its rate sends in --seconds. */
const messagesFor = (scenario: Scenario, clients: number): number =>
  Math.max(1, Math.round(scenario.fixedRate ? (rateAt(clients) * latencySeconds) / clients : deliveries / clients));

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

const outcomes = new Map<string, Outcome[]>(); // key(system, C, scenario) -> one outcome per round
const skipped = new Map<string, string>(); // system -> why it cannot run here
const key = (system: string, clients: number, scenario: string): string => `${scenario}:${system}@${clients}`;
const medians = new Map<string, { perSecond: number; cpuPerDelivery: number }>();
const runs = (scenario: Scenario): System[] =>
  SYSTEMS.filter((system) => scenario.systems.includes(system.name) && (chosen === undefined || chosen.includes(system.name)));
const sections: string[] = [];

for (const scenario of scenarios) {
  for (const clients of sizesOf(scenario)) {
    const messages = messagesFor(scenario, clients);
    const rate = scenario.fixedRate ? (rateAt(clients) / clients).toFixed(2) : undefined;
    for (let round = 1; round <= rounds; round++) {
      for (const system of runs(scenario)) {
        if (skipped.has(system.name)) continue;
        const pace = rate === undefined ? "" : ` at ${rate} messages/s`;
        process.stderr.write(
          `[e2e] ${scenario.name}, ${system.name} C=${fmt(clients)} M=${fmt(messages)}${pace} round ${round}/${rounds} ... `,
        );
        await runAndRecord(system, clients, messages, scenario, rate === undefined ? undefined : Number(rate));
      }
    }
  }
  sections.push(
    scenarioTables(scenario, {
      sizes: sizesOf(scenario),
      systems: runs(scenario),
      messagesFor: (clients) => messagesFor(scenario, clients),
      outcomes: (system, clients) => outcomes.get(key(system, clients, scenario.name)) ?? [],
      skipped,
      record: (system, clients, m) => medians.set(key(system, clients, scenario.name), m),
      median: (system, clients) => medians.get(key(system, clients, scenario.name)),
    }),
  );
}

async function runAndRecord(
  system: System,
  clients: number,
  messages: number,
  scenario: Scenario,
  rate: number | undefined,
): Promise<void> {
  const started = Date.now();
  // Connect phase, then at least 20,000 deliveries/s, or the fixed-rate run's own length.
  const timeoutMs = 90_000 + (clients * messages) / 20 + (rate === undefined ? 0 : (messages / rate) * 1000);
  const outcome = await runOnce(system, {
    clients,
    messages,
    window: scenario.window ?? window,
    burst: scenario.burst,
    roomSize: scenario.roomSize,
    rate,
    timeoutMs,
    fileLimit,
  });
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

const command = `npm run bench:e2e${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
const markdown = [
  "## End to end: real sockets on 127.0.0.1",
  "",
  machine(),
  "",
  `\`${command}\`: C clients, M messages of about 100 bytes of JSON per client; ` +
    `a fresh server process and load-generator process per run; ` +
    `${rounds} round(s) interleaved per C; medians of the rounds, except lost and out of order, which are summed over the rounds. ` +
    "Server CPU is user + system time of the server process over the burst; compare load-gen CPU s with burst s to see whether the load generator was the limit.",
  "socket.io runs the one-room throughput scenarios only. The floor is not a server: `ws` for the handshakes, then one `socket.write` " +
    "of a frame built once per message (a burst's frames joined into one buffer) per delivery, with no checks.",
  ...sections.flatMap((section) => ["", section]),
].join("\n");
console.log(markdown);

if (!quick && chosen === undefined) {
  writeSection("e2e", `${markdown}\n\n![deliveries per second against C](e2e.svg)`);
  const series = SYSTEMS.filter((system) => system.name !== "floor")
    .map((system) => ({
      name: system.name,
      points: sizes.flatMap((c): [number, number][] => {
        const m = medians.get(key(system.name, c, "steady"));
        return m ? [[c, m.perSecond]] : [];
      }),
    }))
    .filter((s) => s.points.length > 0);
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
