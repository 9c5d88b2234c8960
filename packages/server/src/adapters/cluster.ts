import cluster from "node:cluster";
import type { Broker, BrokerEvents } from "ws-channels";
import { ClusterBroker, fromPrimary } from "ws-channels/cluster";
import { type Adapter, type AdapterStats, brokerUp, type NodeAddress } from "./adapter.js";
import { ClusterPresence } from "./cluster-presence.js";
import type { PresenceParts, PresenceStore } from "./presence.js";

/** What a worker's adapter says to the primary (`serveClusterAdapter`), on the one IPC convention of cluster-protocol.ts. */
export type AdapterToPrimary =
  | { wsChannels: "claim"; id: string; exclusive: boolean; request: number }
  | { wsChannels: "release"; id: string }
  | { wsChannels: "locate"; ids: readonly string[]; request: number }
  | { wsChannels: "node"; node: NodeAddress; message: string };

/** What the primary answers, and the node messages it forwards. */
export type AdapterToWorker =
  | { wsChannels: "claimed"; request: number; granted: boolean }
  | { wsChannels: "located"; request: number; found: [string, NodeAddress[]][] }
  | { wsChannels: "node"; message: string };

type Answer = Extract<AdapterToWorker, { request: number }>;

/**
 * A worker of a node:cluster whose primary runs `serveClusterAdapter` (what `runPrimary` does):
 * broadcasts through `ClusterBroker`, ids in the primary's table, and node messages forwarded by
 * the primary. A node's address is its worker id.
 */
export class ClusterAdapter implements Adapter {
  readonly node: NodeAddress;
  readonly broker: Broker = new ClusterBroker();
  readonly #waiting = new Map<number, (answer: Answer | undefined) => void>();
  readonly #unlisten: () => void;
  #receive: ((message: string) => void) | undefined;
  #nextRequest = 0;
  #unsent = 0;

  /** @throws {Error} outside a cluster worker. */
  constructor() {
    if (cluster.worker === undefined) throw new Error("ClusterAdapter runs in a cluster worker");
    this.node = String(cluster.worker.id);
    const answered = (answer: Answer): void => {
      this.#waiting.get(answer.request)?.(answer);
      this.#waiting.delete(answer.request);
    };
    this.#unlisten = fromPrimary<AdapterToWorker>({
      claimed: answered,
      located: answered,
      node: ({ message }) => this.#receive?.(message),
    });
  }

  async claim(id: string, exclusive: boolean): Promise<boolean> {
    const answer = await this.#ask((request) => ({ wsChannels: "claim", id, exclusive, request }));
    // With the primary gone the worker is stopping: no other worker can hold the id meanwhile.
    return answer?.wsChannels !== "claimed" || answer.granted;
  }

  release(id: string): void {
    this.#post({ wsChannels: "release", id });
  }

  async locate(ids: readonly string[]): Promise<Map<string, NodeAddress[]>> {
    if (ids.length === 0) return new Map();
    const answer = await this.#ask((request) => ({ wsChannels: "locate", ids, request }));
    return new Map(answer?.wsChannels === "located" ? answer.found : []);
  }

  /** A worker never loses an id: the primary's table lives as long as the cluster. */
  onLost(): void {}

  sendToNode(node: NodeAddress, message: string): void {
    this.#post({ wsChannels: "node", node, message }, () => this.#unsent++);
  }

  onNodeMessage(listener: (message: string) => void): void {
    this.#receive = listener;
  }

  ready(): Promise<boolean> {
    return brokerUp(this.broker);
  }

  stats(): AdapterStats {
    return { unsent: this.#unsent };
  }

  /** Held by the primary (`serveClusterPresence`) for every worker. */
  presence<E>(parts: PresenceParts<E>): PresenceStore<E> {
    return new ClusterPresence(parts);
  }
  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.broker.on(event, listener);
    return this;
  }

  close(): Promise<void> {
    this.#unlisten();
    for (const resolve of this.#waiting.values()) resolve(undefined);
    this.#waiting.clear();
    return Promise.resolve();
  }

  /** Sends `message` to the primary; `failed` is called if it could not leave (the primary is gone). */
  #post(message: AdapterToPrimary, failed: () => void = () => undefined): void {
    if (!process.connected) return failed();
    process.send?.(message, undefined, undefined, (error: Error | null) => {
      if (error !== null) failed();
    });
  }

  /** Sends a request to the primary. @returns its answer, or undefined if the primary is gone. */
  #ask(message: (request: number) => AdapterToPrimary): Promise<Answer | undefined> {
    const request = this.#nextRequest++;
    return new Promise((resolve) => {
      this.#waiting.set(request, resolve);
      this.#post(message(request), () => {
        this.#waiting.delete(request);
        resolve(undefined);
      });
    });
  }
}
