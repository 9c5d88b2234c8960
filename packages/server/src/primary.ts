import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import { fromWorkers, setupPrimary } from "ws-channels/cluster";
import { serveClusterHistory } from "./adapters/cluster-history-primary.js";
import { serveClusterPresence } from "./adapters/cluster-presence-primary.js";
import { serveClusterAdapter } from "./adapters/cluster-primary.js";
import { type Bound, url } from "./address.js";
import { AdminServer } from "./admin.js";
import type { HistorySettings } from "./history.js";

/** How many worker deaths within DEATH_WINDOW_MS stop the whole server. */
export const MAX_DEATHS = 5;
/** The window over which worker deaths are counted, in ms. */
export const DEATH_WINDOW_MS = 10_000;
/** How long a stopping worker may take before the primary kills it, in ms (its own shutdown is bounded to less). */
const KILL_AFTER_MS = 10_000;

/** What a worker tells the primary over IPC, on the one convention of every ws-channels message there. */
export type WorkerReport = { readonly wsChannels: "listening" } | { readonly wsChannels: "failed"; readonly reason: string };

/** Where the primary's lines go, by level: a pino logger or `console` fits. */
export interface PrimaryLog {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/** Options of `runPrimary`. */
export interface PrimaryOptions {
  /** How many workers to keep running (integer >= 1). */
  workers: number;
  /**
   * Where a line about the cluster goes: at info each listener, worker start and shutdown; at warn
   * a worker that died (by a signal or an exit code) and is replaced, or that had to be killed; at
   * error why the whole server stops with exit status 1.
   */
  log: PrimaryLog;
  /**
   * How the workers reach each other: "cluster" (the primary routes broadcasts and keeps the id
   * table and every worker's presence) or "redis" (each worker talks to Redis; the primary only supervises).
   */
  via: "cluster" | "redis";
  /** Where the admin listener serves every worker's metrics, summed, and the cluster's health. Default: none. */
  admin?: { host: string; port: number } | undefined;
  /** With `via: "cluster"`: the says the primary keeps for every worker (start the workers with the same `historySize`). Default: none. */
  history?: HistorySettings | undefined;
  /**
   * With `via: "cluster"`: the bytes of broadcasts, node messages and says the primary holds for
   * one worker that stops reading its IPC channel, each; past it they are dropped (and logged), and
   * that worker's members of a channel with history get `{"resync": CH}`. Default: 64 MiB.
   */
  backlogBytes?: number | undefined;
}

/**
 * Runs this process as the primary of a node:cluster: forks `workers` copies of the current script,
 * holds no client itself, replaces a worker that dies, and stops everything with exit status 1
 * when more than MAX_DEATHS die within DEATH_WINDOW_MS or a worker cannot start. SIGTERM or
 * SIGINT stops every worker (each closes its clients with 1001), replaces none meanwhile, and
 * exits 0 once they are gone; a second signal changes nothing.
 *
 * Each worker is a whole server on the shared ports, started with
 * `startServer({ spread: { cluster: true } })` (or `{ redis }` with `via: "redis"`) and then handed
 * to `joinPrimary`, which reports it started (the primary logs it, and `/readyz` waits for every
 * worker) and makes it answer the primary's metrics requests (without it a scrape of the primary's
 * `/metrics` waits 5 s for that worker and fails).
 *
 * @example
 * if (cluster.isPrimary) runPrimary({ workers: 4, via: "cluster", log: console });
 * else joinPrimary(await startServer({ port: 4545, spread: { cluster: true } }));
 * @returns nothing: the process exits by itself.
 */
export function runPrimary({ workers, log, via, admin, history, backlogBytes }: PrimaryOptions): void {
  if (via === "cluster") {
    const bound = backlogBytes === undefined ? {} : { maxPendingBytes: backlogBytes };
    setupPrimary({}, bound); // also makes Buffers cross IPC as bytes
    let noted = 0;
    const dropped =
      (what: string) =>
      (worker: Worker): void => {
        if (Date.now() - noted < 1000) return; // at most one line a second
        noted = Date.now();
        log.warn(`worker ${worker.id} is not reading its IPC channel: ${what} to it are dropped`);
      };
    serveClusterAdapter(dropped("node messages"), bound);
    if (history !== undefined) serveClusterHistory(history, bound, dropped("says"));
    serveClusterPresence();
  }
  const deaths: number[] = [];
  const listening = new Set<Worker>();
  let stopping = false;
  if (admin !== undefined) {
    void serveAdmin(admin, () => ({
      ready: !stopping && listening.size === workers,
      closing: stopping,
      workers: listening.size === workers,
    }))
      .then((bound) => log.info(`admin (/metrics, /healthz, /readyz) listening on ${url("http", bound)}`))
      .catch((error: unknown) => stop(1, `cannot start: admin listener: ${error instanceof Error ? error.message : String(error)}`));
  }

  const fork = (): void => {
    const worker = cluster.fork();
    // A send to a worker that has just died fails with EPIPE on the worker object; its `exit`
    // (below) is what counts.
    worker.on("error", () => undefined);
  };
  fromWorkers<WorkerReport>({
    failed: ({ reason }) => stop(1, `cannot start: ${reason}`),
    listening: (_, worker) => {
      listening.add(worker);
      log.info(`worker ${worker.id} (pid ${worker.process.pid}) started`);
    },
  });

  let status = 0;
  const alive = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
  const stop = (exitStatus: number, why: string): void => {
    if (stopping) return;
    stopping = true;
    status = exitStatus;
    if (exitStatus === 0) log.info(why);
    else log.error(why);
    const workers = alive();
    if (workers.length === 0) process.exit(status);
    for (const worker of workers) worker.process.kill("SIGTERM");
    // a worker stuck in its shutdown must not keep the whole server up
    setTimeout(() => {
      for (const worker of alive()) {
        log.warn(`worker ${worker.id} (pid ${worker.process.pid}) did not stop within ${KILL_AFTER_MS / 1000} s: killing it`);
        worker.process.kill("SIGKILL");
      }
    }, KILL_AFTER_MS).unref();
  };

  cluster.on("exit", (worker, code, signal) => {
    listening.delete(worker);
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (stopping) {
      log.info(`worker ${worker.id} (pid ${worker.process.pid}) exited with ${how}`);
      if (alive().length === 0) process.exit(status);
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && (deaths[0] as number) <= now - DEATH_WINDOW_MS) deaths.shift();
    if (deaths.length > MAX_DEATHS) {
      return stop(
        1,
        `worker ${worker.id} (pid ${worker.process.pid}) died with ${how}: ${deaths.length} deaths within ${DEATH_WINDOW_MS / 1000} s, stopping`,
      );
    }
    log.warn(`worker ${worker.id} (pid ${worker.process.pid}) died with ${how}, replacing it`);
    fork();
  });

  const onSignal = (signal: NodeJS.Signals): void => stop(0, `${signal}, closing connections`);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  for (let i = 0; i < workers; i++) fork();
}

/** In a worker: tells the primary where this worker listens, or why it could not start. */
export function report(message: WorkerReport): void {
  process.send?.(message);
}

/** The primary's admin listener: one scrape sums every worker's metrics (prom-client's cluster aggregation). */
function serveAdmin(
  { host, port }: { host: string; port: number },
  readiness: () => { ready: boolean; [part: string]: boolean },
): Promise<Bound> {
  const aggregator = new AggregatorRegistry();
  const server = new AdminServer({ metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType }, readiness);
  return server.listen(host, port);
}
