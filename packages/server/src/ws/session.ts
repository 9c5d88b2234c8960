import WebSocket from "ws";
import type { Channels } from "ws-channels";
import { type Authenticate, type AuthorizeTarget, type Identity, identify, refreshRequest } from "../auth.js";
import { Backlog, type BacklogEvents, type BacklogLimits, Valve } from "../backlog.js";
import type { ClientMeta } from "../client-meta.js";
import type { RefusalReason } from "../refusals.js";
import type { Targets } from "../targets.js";
import type { Caller, JoinHistory } from "./caller.js";
import { type ClosingRefusal, closeRefused, INTERNAL_ERROR, type Refused } from "./close-codes.js";
import { run } from "./commands.js";
import { Grant } from "./grant.js";
import type { ServerPresence } from "./presence.js";
import { parseCommand, type Req } from "./protocol.js";
import { TokenBucket } from "./rate.js";
import { serial } from "./serial.js";

/** What one connection may do; its backlog full for `pendingTimeout`: close 1008 `too many pending`. */
export interface SessionLimits extends BacklogLimits {
  /** The longest channel name, in characters; longer: close 3000 `invalid payload`. */
  readonly maxChannelLength: number;
  /** Channels one connection may be in; a join past it: `{"error": "too many channels"}`. */
  readonly maxChannelsPerConnection: number;
  /** Messages one connection may send per second (and in a burst); past it: close 1008 `rate limit`. */
  readonly maxMessagesPerSecond: number;
  /** Ids one targeted message may list; more: `{"error": "too many targets"}`. */
  readonly maxTargets: number;
}

/** What every session of one server shares. */
export interface SessionServices {
  readonly channels: Channels<ClientMeta>;
  /** Presence on `channels`. */
  readonly presence: ServerPresence;
  /** Where targeted messages go, on this node or another. */
  readonly targets: Targets;
  readonly limits: SessionLimits;
  /** Told of every refusal, to count and log it. */
  readonly refused: Refused;
  /** Told when a connection's backlog fills up, and what it holds. */
  readonly backlog: Omit<BacklogEvents, "stuck">;
  /** Decides whether a connection may send to an id (see `ServerOptions.authorizeTarget`); undefined: any. */
  readonly authorizeTarget: AuthorizeTarget | undefined;
  /** The server's kept says; undefined: history is off. */
  readonly history: JoinHistory | undefined;
  /** Verifies a refreshed token, as it verified the connection's; undefined: no authentication. */
  readonly authenticate: Authenticate | undefined;
  /** How long `authenticate` may take to answer, in ms. */
  readonly hookTimeout: number;
}

/**
 * One admitted WebSocket connection speaking the JSON protocol: its messages go through its rate
 * limit, then one after another through the command handlers, so that its replies and closes
 * leave in the order its messages came in. Everything it writes goes through `channels.send` or
 * `channels.broadcast`, so what it receives leaves in the order the server decided it, even
 * behind a sliced fan-out. It closes itself when its token expires, unless refreshed before.
 */
export class Session implements Caller {
  readonly ws: WebSocket;
  readonly id: string | undefined;
  readonly address: string;
  readonly info: Readonly<Record<string, unknown>> | undefined;
  readonly channels: Channels<ClientMeta>;
  readonly presence: ServerPresence;
  readonly targets: Targets;
  readonly authorizeTarget: AuthorizeTarget | undefined;
  readonly history: JoinHistory | undefined;
  readonly #services: SessionServices;
  readonly #rate: TokenBucket;
  readonly #inOrder: (task: () => Promise<void> | void) => void;
  /** Messages waiting in `#inOrder`, bounded. */
  readonly #backlog: Backlog;
  /** Past the rate: its close is queued and later messages are dropped. */
  #limited = false;
  /** What its token grants, replaced by a refresh. */
  readonly #grant: Grant;
  /** The `req` of the message being handled: its replies carry it. Messages are handled one at a time. */
  #req: Req | undefined;

  /**
   * Starts serving `ws` until it closes.
   * @param identity who `authenticate` verified it is; undefined without authentication.
   * @param claimed the registry's answer to its id claim, if it claimed one: its messages wait
   *   behind it, and a refusal closes it 1008 `id in use`.
   */
  constructor(
    ws: WebSocket,
    address: string,
    id: string | undefined,
    identity: Identity | undefined,
    claimed: Promise<boolean> | undefined,
    services: SessionServices,
  ) {
    this.ws = ws;
    this.id = id;
    this.address = address;
    this.info = identity?.info;
    this.channels = services.channels;
    this.presence = services.presence;
    this.targets = services.targets;
    this.authorizeTarget = services.authorizeTarget;
    this.history = services.history;
    this.#services = services;
    this.#rate = new TokenBucket(services.limits.maxMessagesPerSecond);
    this.#inOrder = serial(() => ws.close(INTERNAL_ERROR.code, INTERNAL_ERROR.reason));
    if (claimed !== undefined) {
      this.#inOrder(() =>
        claimed.then((granted) => {
          if (!granted) this.close("id_in_use");
        }),
      );
    }
    this.#grant = new Grant(identity, () =>
      this.#inOrder(() => {
        if (this.#grant.expired) this.close("token_expired");
      }),
    );
    ws.once("close", () => this.#grant.stop());
    const valve = new Valve(ws);
    this.#backlog = new Backlog(services.limits, valve, {
      ...services.backlog,
      stuck: () => {
        // the task it waits behind may never end: close now, and read again for the peer's close frame
        this.close("too_many_pending");
        valve.open("backlog");
      },
    });
    ws.once("close", () => this.#backlog.stop());
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (this.#limited || ws.readyState !== WebSocket.OPEN) return;
      if (this.#rate.take()) {
        this.#backlog.add(data.length);
        return this.#inOrder(() => {
          this.#backlog.remove(data.length);
          return this.#receive(data, isBinary);
        });
      }
      this.#limited = true; // closed after the replies already queued, like every other close
      this.#inOrder(() => this.close("rate_limit"));
    });
  }

  get allowed(): readonly string[] | undefined {
    return this.#grant.allowed;
  }

  get req(): Req | undefined {
    return this.#req;
  }

  get maxChannelsPerConnection(): number {
    return this.#services.limits.maxChannelsPerConnection;
  }

  get maxTargets(): number {
    return this.#services.limits.maxTargets;
  }

  charge(tokens: number): boolean {
    if (this.#rate.take(tokens)) return true;
    this.#limited = true;
    this.close("rate_limit");
    return false;
  }

  refuse(reason: RefusalReason, detail?: string): void {
    this.#services.refused(reason, this.address, detail);
  }

  close(reason: ClosingRefusal): void {
    closeRefused(this.ws, reason, this.address, this.#services.refused);
  }

  reply(reply: object): Promise<void> {
    const text = JSON.stringify(this.#req === undefined ? reply : { ...reply, req: this.#req });
    return this.#services.channels.send(this.ws, text).then(() => undefined);
  }

  verify(token: string): Promise<Identity | { refused: string }> | undefined {
    const { authenticate, hookTimeout } = this.#services;
    return authenticate && identify(authenticate, refreshRequest(token, this.address), hookTimeout);
  }

  renew(identity: Identity): number | undefined {
    this.#grant.replace(identity);
    return this.#grant.expiresAt;
  }

  #receive(data: Buffer, isBinary: boolean): Promise<void> | void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const command = isBinary ? undefined : parseCommand(data.toString("utf8"), this.#services.limits.maxChannelLength);
    if (command === undefined) return this.close("invalid_payload");
    this.#req = command.req;
    return run(this, command);
  }
}
