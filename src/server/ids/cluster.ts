import cluster, { type Worker } from "node:cluster";
import { type IdRegistry, newRoute } from "./registry.js";

/*
 * Ids across the workers of one node:cluster: the primary holds the table (id -> workers) and
 * answers each worker over IPC. Every message carries the tag `wsChannelsIds`, since the IPC
 * channel is shared with the broker and the application.
 */

type ToPrimary =
  | { wsChannelsIds: "claim"; id: string; exclusive: boolean; route: number; request: number }
  | { wsChannelsIds: "release"; id: string }
  | { wsChannelsIds: "locate"; ids: readonly string[]; request: number };

type ToWorker =
  | { wsChannelsIds: "answer"; request: number; granted: boolean }
  | { wsChannelsIds: "found"; request: number; found: [string, number[]][] };

function tagged<T>(message: unknown): message is T {
  return typeof message === "object" && message !== null && "wsChannelsIds" in message;
}

/**
 * In the primary: keeps which workers hold each id, and forgets a worker's ids when it exits, so
 * a worker that dies frees its ids at once. Call before forking.
 */
export function serveIds(): void {
  const holders = new Map<string, Set<Worker>>();
  const routes = new Map<Worker, number>();
  const held = new Map<Worker, Set<string>>();
  const drop = (id: string, worker: Worker): void => {
    const workers = holders.get(id);
    workers?.delete(worker);
    if (workers?.size === 0) holders.delete(id);
  };

  cluster.on("message", (worker: Worker, message: unknown) => {
    if (!tagged<ToPrimary>(message)) return;
    if (message.wsChannelsIds === "claim") {
      const workers = holders.get(message.id) ?? new Set<Worker>();
      const granted = !message.exclusive || [...workers].every((w) => w === worker);
      if (granted) {
        workers.add(worker);
        holders.set(message.id, workers);
        routes.set(worker, message.route);
        held.set(worker, (held.get(worker) ?? new Set()).add(message.id));
      }
      answer(worker, { wsChannelsIds: "answer", request: message.request, granted });
    } else if (message.wsChannelsIds === "release") {
      drop(message.id, worker);
      held.get(worker)?.delete(message.id);
    } else {
      const found: [string, number[]][] = [];
      for (const id of message.ids) {
        const elsewhere = [...(holders.get(id) ?? [])].filter((w) => w !== worker).map((w) => routes.get(w));
        const known = elsewhere.filter((route): route is number => route !== undefined);
        if (known.length > 0) found.push([id, known]);
      }
      answer(worker, { wsChannelsIds: "found", request: message.request, found });
    }
  });

  cluster.on("exit", (worker) => {
    for (const id of held.get(worker) ?? []) drop(id, worker);
    held.delete(worker);
    routes.delete(worker);
  });
}

function answer(worker: Worker, message: ToWorker): void {
  // the worker may die with a request in flight: a failed send is its `exit`'s business
  if (worker.isConnected()) worker.send(message, undefined, () => undefined);
}

/** In a worker: the registry is the primary's table, asked over IPC. */
export class ClusterIds implements IdRegistry {
  readonly route = newRoute();
  readonly #waiting = new Map<number, (answer: ToWorker | undefined) => void>();
  readonly #listener = (message: unknown): void => {
    if (!tagged<ToWorker>(message)) return;
    const resolve = this.#waiting.get(message.request);
    this.#waiting.delete(message.request);
    resolve?.(message);
  };
  #nextRequest = 0;

  /** @throws {Error} outside a cluster worker. */
  constructor() {
    if (!cluster.isWorker) throw new Error("ClusterIds runs in a cluster worker");
    process.on("message", this.#listener);
  }

  async claim(id: string, exclusive: boolean): Promise<boolean> {
    const answer = await this.#ask((request) => ({ wsChannelsIds: "claim", id, exclusive, route: this.route, request }));
    // With the primary gone the worker is stopping: no other worker can hold the id meanwhile.
    return answer?.wsChannelsIds !== "answer" || answer.granted;
  }

  release(id: string): void {
    if (process.connected) process.send?.({ wsChannelsIds: "release", id } satisfies ToPrimary);
  }

  async locate(ids: readonly string[]): Promise<Map<string, number[]>> {
    if (ids.length === 0) return new Map();
    const answer = await this.#ask((request) => ({ wsChannelsIds: "locate", ids, request }));
    return new Map(answer?.wsChannelsIds === "found" ? answer.found : []);
  }

  /** A worker never loses an id: the primary's table lives as long as the cluster. */
  onLost(): void {}

  close(): Promise<void> {
    process.off("message", this.#listener);
    for (const resolve of this.#waiting.values()) resolve(undefined);
    this.#waiting.clear();
    return Promise.resolve();
  }

  /** Sends a request to the primary. @returns its answer, or undefined if the primary is gone. */
  #ask(message: (request: number) => ToPrimary): Promise<ToWorker | undefined> {
    if (!process.connected) return Promise.resolve(undefined);
    const request = this.#nextRequest++;
    return new Promise((resolve) => {
      this.#waiting.set(request, resolve);
      process.send?.(message(request), undefined, undefined, (error: Error | null) => {
        if (error === null) return;
        this.#waiting.delete(request);
        resolve(undefined);
      });
    });
  }
}
