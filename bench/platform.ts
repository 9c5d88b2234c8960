/**
 * `npm run bench:platform`: what presence and history cost, against the real CLI server
 * (packages/server/dist/cli.js) on one process, on two cluster workers and (history) on two
 * servers sharing a redis-server, with clients in this process. CPU is every thread of every
 * server process (and redis-server), read from /proc; each row is the median of the rounds.
 *
 * - Presence herd: 10,000 connections join one channel back to back while 100 members listen with
 *   `"presence": true`: diff frames per listener, time until every listener's list is complete,
 *   server CPU per join.
 * - Presence churn: a channel at --presence-max (1,000) members, all listening, 1% of them
 *   replaced each second: server CPU per join or leave above the idle server's.
 * - Says: 100 channels of 10 members, one sayer per channel with 4 says in flight, with history
 *   (--history-size 100) and without: says per second and CPU per say.
 * - Recovery: 1,000 members leave, 50 says later they come back (on the other node, where there
 *   are two) and recover at once: time until all have, server and redis-server CPU meanwhile.
 *
 * Flags: --quick (1,000 joins, 100 recovering, 1 round, 1 s: prints only, writes nothing), --rounds R, --seconds S.
 */
import { parseArgs } from "node:util";
import { BACKENDS, recovery, says } from "./platform/history.js";
import { churn, herd } from "./platform/presence.js";
import { fmt, machine, median, table, writeSection } from "./report.js";

const { values: flags } = parseArgs({
  options: { quick: { type: "boolean", default: false }, rounds: { type: "string" }, seconds: { type: "string" } },
});
const quick = flags.quick === true;
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const seconds = Number(flags.seconds ?? (quick ? 1 : 5));
const HERD = quick ? 1_000 : 10_000;
const LISTENERS = quick ? 10 : 100;
const RECOVERING = quick ? 100 : 1_000;
const progress = (line: string): void => void process.stderr.write(`[bench:platform] ${line}\n`);

/** Runs `measure` `rounds` times and gives the median of each numeric field. */
async function medians<T extends object>(what: string, measure: () => Promise<T>): Promise<T> {
  const runs: T[] = [];
  for (let round = 1; round <= rounds; round++) {
    progress(`${what}, round ${round}/${rounds}`);
    runs.push(await measure());
  }
  const first = runs[0] as T;
  return Object.fromEntries(Object.keys(first).map((key) => [key, median(runs.map((run) => run[key as keyof T] as number))])) as T;
}

const sections: string[] = [`Measured ${machine()}; ${rounds} round(s), medians.`];

const herdRows: (string | number)[][] = [];
for (const workers of [1, 2]) {
  const r = await medians(`herd on ${workers} process(es)`, () => herd(HERD, LISTENERS, workers));
  herdRows.push([workers === 1 ? "one process" : "two workers", fmt(r.framesMedian), fmt(r.framesMax), fmt(r.wallMs), fmt(r.cpuPerJoinUs)]);
}
sections.push(
  `### Presence: a herd of ${fmt(HERD)} joins, ${LISTENERS} listeners`,
  table(["server", "diff frames per listener (median)", "(most)", "ms until every list is whole", "server CPU per join (µs)"], herdRows),
);

const churnRows: (string | number)[][] = [];
for (const workers of [1, 2]) {
  const r = await medians(`churn on ${workers} process(es)`, () => churn(1000, seconds * 2, workers));
  churnRows.push([workers === 1 ? "one process" : "two workers", fmt(r.changes), fmt(r.cpuPerChangeUs), fmt(r.cpuPerDeliveryUs)]);
}
sections.push(
  "### Presence: 1,000 members all listening, 1% replaced per second",
  table(["server", "joins and leaves", "server CPU per change (µs)", "per listener reached (µs)"], churnRows),
);

const sayRows: (string | number)[][] = [];
for (const backend of BACKENDS) {
  for (const size of [0, 100]) {
    const r = await medians(`says on ${backend}, history ${size}`, () => says(backend, size, seconds));
    sayRows.push([
      backend,
      size === 0 ? "off" : `--history-size ${size}`,
      fmt(r.saysPerSecond),
      fmt(r.serverCpuPerSayUs),
      fmt(r.redisCpuPerSayUs),
    ]);
  }
}
sections.push(
  "### Says into 100 channels of 10 members, with and without history",
  table(["backend", "history", "says/s", "server CPU per say (µs)", "redis-server CPU per say (µs)"], sayRows),
);

const recoveryRows: (string | number)[][] = [];
for (const backend of BACKENDS) {
  const r = await medians(`recovery on ${backend}`, () => recovery(backend, RECOVERING, 50));
  recoveryRows.push([backend, fmt(r.wallMs), fmt(r.serverCpuMs), backend.includes("Redis") ? fmt(r.redisCpuMs) : "-"]);
}
sections.push(
  `### ${fmt(RECOVERING)} clients recovering 50 missed says each, at once`,
  table(["backend", "ms until all have recovered", "server CPU (ms)", "redis-server CPU (ms)"], recoveryRows),
);

const markdown = `## Presence and history (\`npm run bench:platform\`)\n\n${sections.join("\n\n")}\n`;
process.stdout.write(markdown);
if (!quick) writeSection("platform", markdown);
process.exit(0);
