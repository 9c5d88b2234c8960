import cluster, { type Worker } from "node:cluster";

const NONE: ReadonlySet<Worker> = new Set();

/**
 * In the primary: which workers hold each key (an id, a channel) and which keys each worker holds,
 * so that a worker that exits is forgotten at once, in O(its keys).
 */
export class WorkerIndex<K> {
  readonly #workers = new Map<K, Set<Worker>>();
  readonly #keys = new Map<Worker, Set<K>>();
  readonly #onExit = (worker: Worker): void => {
    for (const key of this.#keys.get(worker) ?? []) this.#unlink(key, worker);
    this.#keys.delete(worker);
  };

  constructor() {
    cluster.on("exit", this.#onExit);
  }

  /** The workers holding `key` now. */
  workers(key: K): ReadonlySet<Worker> {
    return this.#workers.get(key) ?? NONE;
  }

  add(key: K, worker: Worker): void {
    this.#workers.set(key, (this.#workers.get(key) ?? new Set()).add(worker));
    this.#keys.set(worker, (this.#keys.get(worker) ?? new Set()).add(key));
  }

  delete(key: K, worker: Worker): void {
    this.#unlink(key, worker);
    this.#keys.get(worker)?.delete(key);
  }

  /** Stops following workers' exits and forgets everything. */
  close(): void {
    cluster.off("exit", this.#onExit);
    this.#workers.clear();
    this.#keys.clear();
  }

  #unlink(key: K, worker: Worker): void {
    const workers = this.#workers.get(key);
    workers?.delete(worker);
    if (workers?.size === 0) this.#workers.delete(key);
  }
}
