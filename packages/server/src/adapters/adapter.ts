import type { Broker, BrokerEvents, Channels } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";
import type { HistorySettings } from "../history.js";
import { emitted } from "../wait.js";
import type { HistoryStore } from "./history-store.js";
import type { PresenceParts, PresenceStore } from "./presence.js";

/** How long a server waits at start-up for Redis or the cluster primary before serving alone meanwhile, in ms. */
export const START_WAIT_MS = 5_000;

/** A node's address among the nodes of one service: what a node message is sent to, and what `locate` finds. */
export type NodeAddress = string;

/**
 * Where the connection ids of a server spanning several nodes are claimed and found. A node keeps
 * its own connections' ids itself and asks the adapter about the others: a claim, so that an
 * unverified `?id=` is in use on one node at most; and where an id lives, so that a targeted
 * message reaches every node holding it.
 */
export interface IdClaims {
  /**
   * Records that a connection of this node holds `id`.
   * @param exclusive true for an unverified `?id=` claim, which no other node may hold at the
   *   same time; false for an id verified by `authenticate`, which any number of nodes may hold.
   * @returns false if the claim is exclusive and another node holds the id; else true. While the
   *   other nodes cannot be reached the claim is granted, and made for real once they can.
   */
  claim(id: string, exclusive: boolean): Promise<boolean>;
  /** This node no longer holds `id`; what other nodes hold is left alone. */
  release(id: string): void;
  /**
   * Finds which other nodes hold `ids`.
   * @returns id -> the addresses of the other nodes holding it, for the ids held elsewhere; ids
   *   held nowhere else (or all of them while the other nodes cannot be reached) are absent.
   */
  locate(ids: readonly string[]): Promise<Map<string, NodeAddress[]>>;
  /**
   * Called with each exclusive id this node held and lost to another node (possible only after
   * the claims' store lost its state, a Redis restart say, while two nodes each let a connection in).
   */
  onLost(listener: (id: string) => void): void;
}

/** What an adapter has lost, for the metrics. */
export interface AdapterStats {
  /** Node messages that could not be sent: the other nodes could not be reached. */
  unsent: number;
}

/**
 * Everything that spans the nodes of one service, behind one seam: the server talks to the other
 * nodes only through its adapter. One implementation each for a process alone (alone.ts), for the
 * workers of a node:cluster (cluster.ts) and for servers sharing one Redis (redis.ts); another
 * backend (NATS, say) is one more class implementing this, and one more case in `createAdapter`.
 *
 * It carries broadcasts (the `Broker` given to the server's `Channels`), id claims, node messages
 * (a message to one node by its address: what targeted messages to another node's connections
 * travel as), questions to every other node with their answers (`ask`), and whether the other
 * nodes can be reached (`up` and `down`, as the broker's).
 *
 * History and presence storage belong here too (`history`, `presence`): the last says of a
 * channel and who is in it, which every node must read the same, are kept by the backend the
 * adapter already talks to (this process alone, the cluster primary); Redis keeps neither yet.
 */
export interface Adapter extends IdClaims {
  /** This node's address. */
  readonly node: NodeAddress;
  /** What carries broadcasts between nodes; undefined for a process alone. */
  readonly broker: Broker | undefined;
  /**
   * Sends `message` to node `node`, whose `onNodeMessage` listener gets it. Never throws and
   * never waits: a message that cannot be sent now is dropped and counted in `stats().unsent`.
   */
  sendToNode(node: NodeAddress, message: string): void;
  /** Where the messages other nodes send to this node go. One listener. */
  onNodeMessage(listener: (message: string) => void): void;
  /**
   * Asks every other node `question` and gathers their answers (what their `onQuestion` listener
   * resolved to), waiting at most ASK_TIMEOUT_MS (gather.ts): a node that does not answer in time
   * is left out. What the server API's `disconnect` and `channels` span the nodes with.
   * @returns the answers that came, in no order; none for a process alone or while the others cannot be reached.
   */
  ask(question: string): Promise<string[]>;
  /** What answers the other nodes' questions on this node. One listener. */
  onQuestion(listener: (question: string) => Promise<string>): void;
  /**
   * Waits until the other nodes can be reached (once the broker's `Channels` is made: a cluster
   * broker says hello then) and this node can be sent to, at most START_WAIT_MS.
   * @returns whether they can.
   */
  ready(): Promise<boolean>;
  stats(): AdapterStats;
  /**
   * Where this node keeps and reads says (history on): alone, rings in this process; in a
   * cluster, the primary's (`serveClusterHistory`), so a client back on another worker recovers;
   * on Redis, a stream per channel there, so a client back on another server recovers.
   * Call once, with the server's `Channels`, which the store delivers says to.
   */
  history(settings: HistorySettings, channels: Channels<ClientMeta>): HistoryStore;
  /**
   * Makes the server's presence store from its parts: kept by this process alone, or (cluster) by
   * the primary for every worker. Called once per server; the store is the server's to close.
   */
  presence<E>(parts: PresenceParts<E>): PresenceStore<E>;
  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this;
  /** Releases this node's claims, stops taking node messages and closes what the adapter opened; the broker is its `Channels`'s to close. */
  close(): Promise<void>;
}

/** Waits for `broker`'s first `up`, at most START_WAIT_MS. @returns whether it came. */
export function brokerUp(broker: Broker): Promise<boolean> {
  return broker.stats().connected ? Promise.resolve(true) : emitted(broker, "up", START_WAIT_MS);
}
