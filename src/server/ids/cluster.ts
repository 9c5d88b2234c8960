import cluster, { type Worker } from "node:cluster";
import { type IdRegistry, newRoute } from "./registry.js";

/*
 * Ids across the workers of one node:cluster: the primary holds the table (id -> worker) and
 * answers each worker over IPC. Every message carries the tag `wsChannelsIds`, since the IPC
 * channel is shared with the broker and the application.
 */

type ToPrimary =
  | { wsChannelsIds: "claim"; id: string; route: number; request: number }
  | { wsChannelsIds: "release"; id: string }
  | { wsChannelsIds: "locate"; ids: readonly string[]; request: number };

type ToWorker =
  | { wsChannelsIds: "answer"; request: number; granted: boolean }
  | { wsChannelsIds: "found"; request: number; found: [string, number][] };

function tagged<T>(message: unknown): message is T {
  return typeof message === "object" && message !== null && "wsChannelsIds" in message;
}

/**
 * In the primary: keeps which worker holds each id, and forgets a worker's ids when it exits, so
 * a worker that dies frees its ids at once. Call before forking.
 */
export function serveIds(): void {
  const holders = new Map<string, Worker>();
  const routes = new Map<Worker, number>();
  const held = new Map<Worker, Set<string>>();

  cluster.on("message", (worker: Worker, message: unknown) => {
    if (!tagged<ToPrimary>(message)) return;
    if (message.wsChannelsIds === "claim") {
      const holder = holders.get(message.id);
      const granted = holder === undefined || holder === worker;
      if (granted) {
        holders.set(message.id, worker);
        routes.set(worker, message.route);
        const ids = held.get(worker) ?? new Set();
        ids.add(message.id);
        held.set(worker, ids);
      }
      answer(worker, { wsChannelsIds: "answer", request: message.request, granted });
    } else if (message.wsChannelsIds === "release") {
      if (holders.get(message.id) !== worker) return;
      holders.delete(message.id);
      held.get(worker)?.delete(message.id);
    } else {
      const found: [string, number][] = [];
      for (const id of message.ids) {
        const holder = holders.get(id);
        const route = holder === undefined || holder === worker ? undefined : routes.get(holder);
        if (route !== undefined) found.push([id, route]);
      }
      answer(worker, { wsChannelsIds: "found", request: message.request, found });
    }
  });

  cluster.on("exit", (worker) => {
    for (const id of held.get(worker) ?? []) if (holders.get(id) === worker) holders.delete(id);
    held.delete(worker);
    routes.delete(worker);
  });
}

function answer(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

/** In a worker: the registry is the primary's table, asked over IPC. */
export class ClusterIds implements IdRegistry {
  readonly route = newRoute();
  readonly #waiting = new Map<number, (answer: ToWorker) => void>();
  #nextRequest = 0;

  /** @throws {Error} outside a cluster worker. */
  constructor() {
    if (!cluster.isWorker || process.send === undefined) throw new Error("ClusterIds runs in a cluster worker");
    process.on("message", (message: unknown) => {
      if (!tagged<ToWorker>(message)) return;
      const resolve = this.#waiting.get(message.request);
      this.#waiting.delete(message.request);
      resolve?.(message);
    });
  }

  async claim(id: string): Promise<boolean> {
    const answer = await this.#ask((request) => ({ wsChannelsIds: "claim", id, route: this.route, request }));
    // With the primary gone the worker is stopping: whatever it does now, no other worker hears it.
    return answer?.wsChannelsIds !== "answer" || answer.granted;
  }

  release(id: string): void {
    if (process.connected) process.send?.({ wsChannelsIds: "release", id } satisfies ToPrimary);
  }

  async locate(ids: readonly string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const answer = await this.#ask((request) => ({ wsChannelsIds: "locate", ids, request }));
    return new Map(answer?.wsChannelsIds === "found" ? answer.found : []);
  }

  /** A worker never loses an id: the primary's table lives as long as the cluster. */
  onLost(): void {}

  close(): Promise<void> {
    for (const resolve of this.#waiting.values()) resolve({ wsChannelsIds: "found", request: -1, found: [] });
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
