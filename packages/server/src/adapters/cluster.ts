import cluster from "node:cluster";
import type { Broker, BrokerEvents, Channels } from "ws-channels";
import { ClusterBroker, fromPrimary } from "ws-channels/cluster";
import type { ClientMeta } from "../client-meta.js";
import type { HistorySettings } from "../history.js";
import { type Adapter, type AdapterStats, brokerUp, type NodeAddress } from "./adapter.js";
import { ClusterHistory } from "./cluster-history.js";
import { ClusterPresence } from "./cluster-presence.js";
import type { HistoryStore } from "./history-store.js";
import type { PresenceParts, PresenceStore } from "./presence.js";

/** What a worker's adapter says to the primary (`serveClusterAdapter`), on the one IPC convention of cluster-protocol.ts. */
export type AdapterToPrimary =
  | { wsChannels: "claim"; id: string; exclusive: boolean; request: number }
  | { wsChannels: "release"; id: string }
  | { wsChannels: "locate"; ids: readonly string[]; request: number }
  | { wsChannels: "node"; node: NodeAddress; message: string }
  | { wsChannels: "ask"; question: string; request: number }
  | { wsChannels: "answer"; request: number; answer: string };

/** What the primary answers, and the node messages it forwards. */
export type AdapterToWorker =
  | { wsChannels: "claimed"; request: number; granted: boolean }
  | { wsChannels: "located"; request: number; found: [string, NodeAddress[]][] }
  | { wsChannels: "node"; message: string }
  | { wsChannels: "answers"; request: number; answers: string[] }
  | { wsChannels: "question"; question: string; request: number };

type Answer = Extract<AdapterToWorker, { request: number }>;

/** How long a worker waits for the primary to answer a claim or a locate, in ms. */
export const REQUEST_TIMEOUT_MS = 5_000;

/**
 * A worker of a node:cluster whose primary runs `serveClusterAdapter` (what `runPrimary` does):
 * broadcasts through `ClusterBroker`, ids in the primary's table, and node messages forwarded by
 * the primary. A node's address is its worker id.
 */
export class ClusterAdapter implements Adapter {
  readonly node: NodeAddress;
  readonly broker: Broker = new ClusterBroker();
  /** Requests sent, by number: each resolves with its answer, "gone" (the primary is) or "timeout". */
  readonly #waiting = new Map<number, (answer: Answer | "gone" | "timeout") => void>();
  readonly #timeoutMs: number;
  readonly #unlisten: () => void;
  #receive: ((message: string) => void) | undefined;
  #answer: ((question: string) => Promise<string>) | undefined;
  #nextRequest = 0;
  #unsent = 0;

  /**
   * @param timeoutMs how long a claim or locate waits for the primary's answer: without one in
   *   time, the claim is refused and the ids are found nowhere. Default: REQUEST_TIMEOUT_MS.
   * @throws {Error} outside a cluster worker.
   */
  constructor(timeoutMs = REQUEST_TIMEOUT_MS) {
    if (cluster.worker === undefined) throw new Error("ClusterAdapter runs in a cluster worker");
    this.node = String(cluster.worker.id);
    this.#timeoutMs = timeoutMs;
    const answered = (answer: Answer): void => {
      this.#waiting.get(answer.request)?.(answer);
      this.#waiting.delete(answer.request);
    };
    this.#unlisten = fromPrimary<AdapterToWorker>({
      claimed: answered,
      located: answered,
      node: ({ message }) => this.#receive?.(message),
      answers: answered,
      question: ({ question, request }) => {
        const reply = (answer: string): void => this.#post({ wsChannels: "answer", request, answer });
        this.#answer?.(question).then(reply, () => undefined); // no answer: the primary's wait ends it
      },
    });
  }

  async claim(id: string, exclusive: boolean): Promise<boolean> {
    const answer = await this.#ask((request) => ({ wsChannels: "claim", id, exclusive, request }));
    // With the primary gone the worker is stopping: no other worker can hold the id meanwhile.
    // A primary that does not answer may have given the id to another: refused.
    if (answer === "gone") return true;
    return answer !== "timeout" && answer.wsChannels === "claimed" && answer.granted;
  }

  release(id: string): void {
    this.#post({ wsChannels: "release", id });
  }

  async locate(ids: readonly string[]): Promise<Map<string, NodeAddress[]>> {
    if (ids.length === 0) return new Map();
    const answer = await this.#ask((request) => ({ wsChannels: "locate", ids, request }));
    return new Map(typeof answer === "object" && answer.wsChannels === "located" ? answer.found : []);
  }

  /** A worker never loses an id: the primary's table lives as long as the cluster. */
  onLost(): void {}

  sendToNode(node: NodeAddress, message: string): void {
    this.#post({ wsChannels: "node", node, message }, () => this.#unsent++);
  }

  onNodeMessage(listener: (message: string) => void): void {
    this.#receive = listener;
  }

  /** The primary sends `question` to every other worker and answers with what came within its wait. */
  async ask(question: string): Promise<string[]> {
    const answer = await this.#ask((request) => ({ wsChannels: "ask", question, request }));
    return typeof answer === "object" && answer.wsChannels === "answers" ? answer.answers : [];
  }

  onQuestion(listener: (question: string) => Promise<string>): void {
    this.#answer = listener;
  }

  ready(): Promise<boolean> {
    return brokerUp(this.broker);
  }

  stats(): AdapterStats {
    return { unsent: this.#unsent };
  }

  /** The primary's rings (`serveClusterHistory`); its settings are the primary's, which the CLI gives both. */
  history(_settings: HistorySettings, channels: Channels<ClientMeta>): HistoryStore {
    return new ClusterHistory(channels);
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
    for (const resolve of this.#waiting.values()) resolve("gone");
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

  /** Sends a request to the primary. @returns its answer, "gone" if the primary is, "timeout" if it did not answer in time. */
  #ask(message: (request: number) => AdapterToPrimary): Promise<Answer | "gone" | "timeout"> {
    const request = this.#nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle("timeout"), this.#timeoutMs).unref();
      const settle = (answer: Answer | "gone" | "timeout"): void => {
        clearTimeout(timer);
        this.#waiting.delete(request);
        resolve(answer);
      };
      this.#waiting.set(request, settle);
      this.#post(message(request), () => settle("gone"));
    });
  }
}
