import cluster, { type Worker } from "node:cluster";

/** How many worker deaths within DEATH_WINDOW_MS stop the whole server. */
export const MAX_DEATHS = 5;
/** The window over which worker deaths are counted, in ms. */
export const DEATH_WINDOW_MS = 10_000;

/** What a worker tells the primary over IPC; tagged, since the IPC channel is shared with brokers. */
export type WorkerReport = { readonly wsChannelsServer: "listening" } | { readonly wsChannelsServer: "failed"; readonly reason: string };

/** Options of `runPrimary`. */
export interface PrimaryOptions {
  /** How many workers to keep running (integer >= 1). */
  workers: number;
  /** Where a line about the cluster goes: one per listener, worker start and exit, and shutdown. */
  log: (line: string) => void;
}

function isReport(message: unknown): message is WorkerReport {
  return typeof message === "object" && message !== null && "wsChannelsServer" in message;
}

/**
 * Runs this process as the primary of a node:cluster: forks `workers` copies of the current script
 * (each a whole server on the shared ports), holds no client itself, replaces a worker that dies,
 * and stops everything with exit status 1 when more than MAX_DEATHS die within DEATH_WINDOW_MS or
 * a worker cannot start. SIGTERM or SIGINT stops every worker (each closes its clients with 1001),
 * replaces none meanwhile, and exits 0 once they are gone; a second signal changes nothing.
 *
 * @returns nothing: the process exits by itself.
 */
export function runPrimary({ workers, log }: PrimaryOptions): void {
  // Buffers cross IPC as Buffers (brokers carry envelopes), not as JSON arrays of numbers.
  cluster.setupPrimary({ serialization: "advanced" });
  const deaths: number[] = [];
  let stopping = false;

  const fork = (): void => {
    const worker = cluster.fork();
    worker.on("message", (message: unknown) => {
      if (!isReport(message)) return;
      if (message.wsChannelsServer === "failed") return stop(1, `cannot start: ${message.reason}`);
      log(`worker ${worker.id} (pid ${worker.process.pid}) started`);
    });
  };

  let status = 0;
  const alive = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
  const stop = (exitStatus: number, why: string): void => {
    if (stopping) return;
    stopping = true;
    status = exitStatus;
    log(why);
    const workers = alive();
    if (workers.length === 0) process.exit(status);
    for (const worker of workers) worker.process.kill("SIGTERM");
  };

  cluster.on("exit", (worker, code, signal) => {
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (stopping) {
      log(`worker ${worker.id} (pid ${worker.process.pid}) exited with ${how}`);
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
    log(`worker ${worker.id} (pid ${worker.process.pid}) died with ${how}, replacing it`);
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
