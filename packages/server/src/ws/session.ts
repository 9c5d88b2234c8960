import WebSocket from "ws";
import type { Channels } from "ws-channels";
import type { AuthorizeTarget, Identity } from "../auth.js";
import { Backlog, type BacklogEvents, type BacklogLimits, Valve } from "../backlog.js";
import type { ClientMeta } from "../client-meta.js";
import type { RefusalReason } from "../metrics.js";
import type { Targets } from "../targets.js";
import { type ClosingRefusal, closeRefused, INTERNAL_ERROR, type Refused } from "./close-codes.js";
import { type Caller, run } from "./commands.js";
import type { ServerPresence } from "./presence.js";
import { parseCommand } from "./protocol.js";
import { TokenBucket } from "./rate.js";
import { serial } from "./serial.js";

/** The longest delay `setTimeout` takes, in ms (about 24.8 days); an expiry further off waits in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
}

/**
 * One admitted WebSocket connection speaking the JSON protocol: its messages go through its rate
 * limit, then one after another through the command handlers, so that its replies and closes
 * leave in the order its messages came in. Everything it writes goes through `channels.send` or
 * `channels.broadcast`, so what it receives leaves in the order the server decided it, even
 * behind a sliced fan-out. It closes itself when its token expires.
 */
export class Session implements Caller {
  readonly ws: WebSocket;
  readonly id: string | undefined;
  readonly address: string;
  readonly allowed: readonly string[] | undefined;
  readonly info: Readonly<Record<string, unknown>> | undefined;
  readonly #services: SessionServices;
  readonly #rate: TokenBucket;
  readonly #inOrder: (task: () => Promise<void> | void) => void;
  /** Messages waiting in `#inOrder`, bounded. */
  readonly #backlog: Backlog;
  /** Past the rate: its close is queued and later messages are dropped. */
  #limited = false;

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
    this.allowed = identity?.channels;
    this.info = identity?.info;
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
    if (identity?.expiresAt !== undefined) this.#expireAt(identity.expiresAt);
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

  get channels(): Channels<ClientMeta> {
    return this.#services.channels;
  }

  get presence(): ServerPresence {
    return this.#services.presence;
  }

  get targets(): Targets {
    return this.#services.targets;
  }

  get maxChannelsPerConnection(): number {
    return this.#services.limits.maxChannelsPerConnection;
  }

  get maxTargets(): number {
    return this.#services.limits.maxTargets;
  }

  get authorizeTarget(): AuthorizeTarget | undefined {
    return this.#services.authorizeTarget;
  }

  charge(tokens: number): boolean {
    if (this.#rate.take(tokens)) return true;
    this.#limited = true;
    this.close("rate_limit");
    return false;
  }

  refuse(reason: RefusalReason): void {
    this.#services.refused(reason, this.address);
  }

  close(reason: ClosingRefusal): void {
    closeRefused(this.ws, reason, this.address, this.#services.refused);
  }

  reply(reply: object): Promise<void> {
    return this.#services.channels.send(this.ws, JSON.stringify(reply)).then(() => undefined);
  }

  #receive(data: Buffer, isBinary: boolean): Promise<void> | void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const command = isBinary ? undefined : parseCommand(data.toString("utf8"), this.#services.limits.maxChannelLength);
    if (command === undefined) return this.close("invalid_payload");
    return run(this, command);
  }

  /** Closes the connection 1008 `token expired` once `expiresAt` (ms since the epoch) passes. */
  #expireAt(expiresAt: number): void {
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const left = expiresAt - Date.now();
      if (left > 0) {
        timer = setTimeout(check, Math.min(left, MAX_TIMER_MS));
        return;
      }
      this.#inOrder(() => this.close("token_expired"));
    };
    check();
    this.ws.once("close", () => clearTimeout(timer));
  }
}
