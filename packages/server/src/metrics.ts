import cluster from "node:cluster";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { ChannelsStats } from "ws-channels";

import { apiMetrics } from "./api/metrics.js";
import { REFUSAL_REASONS, type RefusalReason } from "./refusals.js";

/** The listener a connection came in on: the `transport` label. */
export type Transport = "ws" | "tcp";

/** Why a connection stopped being read: its backlog filled up, or (TCP) it is past its rate. */
export type PauseReason = "backlog" | "rate";

/** What the metrics read at each scrape. */
export interface MetricsSource {
  /** Open connections now, per transport. */
  connections(): { ws: number; tcp: number };
  /** The server's `Channels`: what its table holds and its totals (and its broker's, if any). */
  stats(): ChannelsStats;
  /** Whether the server has a broker: then `ws_channels_broker_up` and `ws_channels_broker_lost_total` exist. */
  broker: boolean;
  /** Node messages (targeted messages to another node) that could not be sent: also lost between nodes. */
  unsent(): number;
  /** Node messages from the broker that were not what a node sends, dropped (envelopes are counted in the broker's stats). */
  invalid(): number;
}

/** How the primary of a node:cluster merges one series over its workers (prom-client's `aggregator`). */
type Merge = "sum" | "min" | "max";

/**
 * The server's Prometheus metrics, on a registry of its own (so that several servers in one
 * process never collide): prom-client's default process metrics and the `ws_channels_*` series.
 * Gauges and the broadcast totals are read from `source` at each scrape; refusals are counted as
 * they happen, through `refused()`.
 *
 * In a node:cluster worker the primary serves one scrape for all workers, merging their series:
 * counters and the gauges whose sum is a total (connections, memberships) are summed, `broker_up`
 * is the least of the workers' (1 only while every worker's broker is up), `backlog_peak_bytes`
 * the greatest, and `channels` (a channel can live on several workers) is one series per worker,
 * labelled `worker` with the worker's id. A server alone in its process has no `worker` label.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #refused: Counter<"reason">;
  readonly #paused: Counter<"transport" | "reason">;
  readonly #peak: Record<Transport, number> = { ws: 0, tcp: 0 };
  /** Counts one server API request (api/metrics.ts). */
  readonly api = apiMetrics([this.registry]);

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "ws_channels_connections",
      help: "Open connections, per transport (ws, tcp)",
      labelNames: ["transport"],
      registers,
      collect() {
        const { ws, tcp } = source.connections();
        this.set({ transport: "ws" }, ws);
        this.set({ transport: "tcp" }, tcp);
      },
    });
    gauge("ws_channels_channels", "Channels with at least one member (per worker)", () => source.stats().channels, registers, WORKER);
    gauge("ws_channels_memberships", "(channel, member) pairs", () => source.stats().memberships, registers);
    total("ws_channels_broadcasts_total", "Broadcasts called", () => source.stats().broadcasts, registers);
    total("ws_channels_deliveries_total", "Messages written to a member by a broadcast", () => source.stats().delivered, registers);
    total(
      "ws_channels_failed_total",
      "Members of a broadcast that were closed or whose write threw",
      () => source.stats().failed,
      registers,
    );
    total("ws_channels_dropped_total", "Broadcast messages a slow consumer did not get", () => source.stats().dropped, registers);
    if (source.broker) {
      gauge(
        "ws_channels_broker_up",
        "1 while the broker carries broadcasts between nodes, else 0",
        () => (source.stats().broker?.connected ? 1 : 0),
        registers,
        "min",
      );
      total(
        "ws_channels_broker_lost_total",
        "Broadcasts and targeted messages between nodes that were lost: not sent while the other nodes could not be reached, or gaps in what arrived",
        () => {
          const broker = source.stats().broker;
          return (broker?.lost ?? 0) + (broker?.unpublished ?? 0) + source.unsent();
        },
        registers,
      );
      total(
        "ws_channels_broker_invalid_total",
        "Messages from the broker that were not what a node sends (not an envelope, another channel's, a repeat, a jump in sequence, a malformed node message): dropped",
        () => (source.stats().broker?.invalid ?? 0) + source.invalid(),
        registers,
      );
    }
    this.#refused = new Counter({
      name: "ws_channels_refused_total",
      help: "Refusals, per reason (a token, an origin, a limit, a bad message, ...)",
      labelNames: ["reason"],
      registers,
    });
    this.#paused = new Counter({
      name: "ws_channels_paused_total",
      help: "Times a connection stopped being read (backpressure), per transport and reason (backlog full, past its rate)",
      labelNames: ["transport", "reason"],
      registers,
    });
    const peak = this.#peak;
    new Gauge({
      name: "ws_channels_backlog_peak_bytes",
      help: "The most bytes one connection had read and not yet handled at once, since start, per transport",
      labelNames: ["transport"],
      registers,
      aggregator: "max",
      collect() {
        for (const transport of ["ws", "tcp"] as const) this.set({ transport }, peak[transport]);
      },
    });
    // Every series exists from the start, so that rate() sees its first increment.
    for (const reason of REFUSAL_REASONS) this.#refused.inc({ reason }, 0);
    for (const [transport, reason] of [
      ["ws", "backlog"],
      ["tcp", "backlog"],
      ["tcp", "rate"],
    ] as const)
      this.#paused.inc({ transport, reason }, 0);
  }

  /** Counts a connection that stopped being read. */
  paused(transport: Transport, reason: PauseReason): void {
    this.#paused.inc({ transport, reason });
  }

  /** Notes that a connection holds `bytes` read and not yet handled. */
  held(transport: Transport, bytes: number): void {
    if (bytes > this.#peak[transport]) this.#peak[transport] = bytes;
  }

  /** Counts one refusal. */
  refused(reason: RefusalReason): void {
    this.#refused.inc({ reason });
  }
}

/** The `worker` label of this process's per-worker series: its node:cluster worker id, or none alone. */
const WORKER: { worker: string } | undefined = cluster.isWorker ? { worker: String(cluster.worker?.id) } : undefined;

/**
 * A gauge read at each scrape. `merge`: how the primary merges it over workers, or, given the
 * `worker` label, one series per worker.
 */
function gauge(name: string, help: string, read: () => number, registers: Registry[], merge: Merge | { worker: string } = "sum"): void {
  const labels = typeof merge === "object" ? merge : {};
  new Gauge({
    name,
    help,
    registers,
    labelNames: Object.keys(labels),
    aggregator: typeof merge === "object" ? "sum" : merge,
    collect() {
      this.set(labels, read());
    },
  });
}

/**
 * A counter that follows a running total kept elsewhere (the `Channels` totals). It never goes
 * down (prom-client would throw, failing the whole scrape): a total read lower than before adds
 * nothing until it is past what was counted.
 */
function total(name: string, help: string, read: () => number, registers: Registry[]): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read();
      if (!(now > seen)) return; // not a number, or not higher
      this.inc(now - seen);
      seen = now;
    },
  });
}
