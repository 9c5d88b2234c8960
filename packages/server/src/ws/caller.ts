import type WebSocket from "ws";
import type { Channels } from "ws-channels";
import type { HistoryStore } from "../adapters/history-store.js";
import type { AuthorizeTarget, Identity } from "../auth.js";
import type { ClientMeta } from "../client-meta.js";
import type { RefusalReason } from "../refusals.js";
import type { Targets } from "../targets.js";
import type { ClosingRefusal } from "./close-codes.js";
import type { ServerPresence } from "./presence.js";
import type { Req } from "./protocol.js";

/** What a command handler may use: the connection that sent the command, and what every connection shares. */
export interface Caller {
  readonly ws: WebSocket;
  /** Its id for targeted messages (verified, or its `?id=`), if any. */
  readonly id: string | undefined;
  /** Its IP address, for the refusal log. */
  readonly address: string;
  /** The channels its token lets it join (entries ending in `*` are prefixes); undefined: any. */
  readonly allowed: readonly string[] | undefined;
  /** What its presence entries carry as `info` (the token's `info` claim), if anything. */
  readonly info: Readonly<Record<string, unknown>> | undefined;
  readonly channels: Channels<ClientMeta>;
  readonly presence: ServerPresence;
  readonly targets: Targets;
  readonly maxChannelsPerConnection: number;
  /** Ids one targeted message may list. */
  readonly maxTargets: number;
  /** Decides whether it may send to an id; undefined: to any. */
  readonly authorizeTarget: AuthorizeTarget | undefined;
  /** The server's kept says; undefined: history is off. */
  readonly history: JoinHistory | undefined;
  /**
   * Takes `tokens` more from its rate limit, on top of the one each message takes.
   * @returns false after closing it 1008 `rate limit` when its bucket holds fewer.
   */
  charge(tokens: number): boolean;
  /** Counts and logs a refusal (`detail` for the log only); the connection stays open. */
  refuse(reason: RefusalReason, detail?: string): void;
  /** Counts and logs a refusal, then closes the connection with its close code. */
  close(reason: ClosingRefusal): void;
  /**
   * Sends a reply in order with the broadcasts to the connection, and resolves once it is written:
   * the connection's next message waits for it, so a later close cannot overtake it. It carries
   * the `req` of the message being handled, if that had one.
   */
  reply(reply: object): Promise<void>;
  /** The `req` of the message being handled, for a reply that does not go through `reply`. */
  readonly req: Req | undefined;
  /**
   * Verifies `token` as the connection's own token was verified (within the hook timeout).
   * @returns undefined when the server has no authentication.
   */
  verify(token: string): Promise<Identity | { refused: string }> | undefined;
  /**
   * Takes a refreshed identity's channels (for later joins) and expiry.
   * @returns the new expiry, in ms since the epoch; undefined: none.
   */
  renew(identity: Identity): number | undefined;
}

/** What a session needs of history: where says are kept, and the `authorize` hook a join with history asks itself. */
export interface JoinHistory {
  readonly store: HistoryStore;
  /** Whether a connection with `id` may join `channel`: the hook said true (a throw, a rejection or a timeout refuses). */
  mayJoin(channel: string, id: string | undefined): Promise<boolean>;
}
