/* The markdown of one bench:e2e scenario: per-system medians, ratios of ws-channels to each peer, notes. */
import { fmt, median, table } from "../report.js";
import type { Measured, Outcome, System } from "./run.js";
import { OURS, type Scenario } from "./scenarios.js";

/** What the orchestrator knows of one scenario's runs. */
export interface ScenarioRuns {
  sizes: number[];
  systems: System[];
  messagesFor(clients: number): number;
  outcomes(system: string, clients: number): Outcome[];
  skipped: ReadonlyMap<string, string>;
  record(system: string, clients: number, medians: { perSecond: number; cpuPerDelivery: number }): void;
  median(system: string, clients: number): { perSecond: number; cpuPerDelivery: number } | undefined;
}

const HEADER = [
  "system",
  "C",
  "M",
  "deliveries/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "lost",
  "out of order",
  "server CPU µs/delivery",
  "server CPU s",
  "load-gen CPU s",
  "burst s",
  "server RSS/conn KB",
  "server JS heap/conn KB",
  "max loop block ms",
  "runs ok",
];

/**
 * One scenario's results table (medians per system and C; lost and out of order summed over the
 * rounds, so one bad round shows), its ratio table and notes, as markdown.
 */
export function scenarioTables(scenario: Scenario, runs: ScenarioRuns): string {
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  for (const clients of runs.sizes) {
    for (const system of runs.systems) {
      const list = runs.outcomes(system.name, clients);
      const ok = list.flatMap((o) => (o.ok ? [o.value] : []));
      const first = [system.name, fmt(clients), fmt(runs.messagesFor(clients))];
      if (ok.length === 0) {
        const why = runs.skipped.has(system.name)
          ? `skipped: ${runs.skipped.get(system.name)}`
          : `failed: ${list.map((o) => (o.ok ? "" : o.reason)).join("; ")}`;
        rows.push([...first, why, ...HEADER.slice(4, -1).map(() => "-"), `0/${list.length}`]);
        continue;
      }
      for (const o of list) if (!o.ok) notes.push(`${system.name}, C = ${fmt(clients)}: a run failed: ${o.reason}`);
      const med = (f: (m: Measured) => number): number => median(ok.map(f));
      const perSecond = med((m) => m.burst.perSecond);
      const cpuPerDelivery = med((m) => m.serverCpuUs / Math.max(1, m.burst.delivered));
      runs.record(system.name, clients, { perSecond, cpuPerDelivery });
      const sum = (f: (m: Measured) => number): number => ok.reduce((total, m) => total + f(m), 0);
      rows.push([
        ...first,
        fmt(perSecond),
        fmt(med((m) => m.burst.p50Ms)),
        fmt(med((m) => m.burst.p99Ms)),
        fmt(med((m) => m.burst.p999Ms)),
        sum((m) => m.burst.lost),
        sum((m) => m.burst.outOfOrder),
        fmt(cpuPerDelivery),
        fmt(med((m) => m.serverCpuUs / 1e6)),
        fmt(med((m) => m.burst.cpuUs / 1e6)),
        fmt(med((m) => m.burst.seconds)),
        fmt(med((m) => m.rssPerConnectionKB)),
        fmt(med((m) => m.heapPerConnectionKB)),
        fmt(med((m) => m.maxBlockMs)),
        `${ok.length}/${list.length}`,
      ]);
      const duplicates = sum((m) => m.burst.duplicates);
      const closed = sum((m) => m.burst.closed);
      const misrouted = sum((m) => m.burst.misrouted);
      if (duplicates || closed || misrouted)
        notes.push(
          `${system.name}, C = ${fmt(clients)}: ${duplicates} duplicate deliveries, ${misrouted} to a client of another room, ` +
            `${closed} connections closed during bursts`,
        );
    }
  }

  // ws-channels over each peer: above 1 is better for deliveries/s, below 1 is better for CPU per delivery.
  const ratioRows: string[][] = [];
  for (const clients of runs.sizes) {
    const ours = runs.median(OURS, clients);
    for (const system of runs.systems.filter((s) => s.name !== OURS)) {
      const peer = runs.median(system.name, clients);
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
    table(HEADER, rows),
    "",
    "ws-channels over each peer (deliveries/s: above 1x is better; server CPU per delivery: below 1x is better):",
    "",
    table(["C", "peer", "deliveries/s ratio", "server CPU/delivery ratio"], ratioRows),
    ...(notes.length ? ["", ...notes.map((n) => `- ${n}`)] : []),
  ].join("\n");
}
