import type { Logger } from "pino";
import type { SlowConsumerPolicy } from "ws-channels";
import type { Spread } from "./adapters/index.js";
import type { Authenticate, AuthorizeTarget } from "./auth.js";
import type { JwtKey, JwtOptions } from "./jwt.js";
import type { TlsFiles } from "./ws/listener.js";

/** Options of `startServer`; every one has the default the CLI shows in `--help`. */
export interface ServerOptions {
  /** Address the WebSocket and TCP listeners bind to. Default: 127.0.0.1. */
  host?: string;
  /** WebSocket port; 0 picks a free one. Default: 4545. */
  port?: number;
  /**
   * TCP broadcast port; 0 picks a free one; false: no TCP listener. Default: 1234, or false when
   * `authenticate` or `jwt` is set (the TCP port cannot authenticate).
   */
  tcpPort?: number | false;
  /** Largest message a WebSocket client may send, in bytes. Default: 65536 (64 KiB). */
  maxFrameSize?: number;
  /** Longest channel name, in characters. Default: 128. */
  maxChannelLength?: number;
  /** How long shutdown waits for connections to close before cutting them, in ms. Default: 2000. */
  graceMs?: number;
  /** Unsent bytes over which a client is a slow consumer. Default: 1048576 (1 MiB). */
  highWaterMark?: number;
  /** What happens to a slow consumer: "skip" the message, or "close" it with 1013. Default: "skip". */
  slowConsumer?: SlowConsumerPolicy;
  /** Channels one WebSocket connection may be in. Default: 100. */
  maxChannelsPerConnection?: number;
  /**
   * Open connections (WebSocket, upgrades being verified, TCP) from one client: an IPv4 address
   * (IPv4-mapped IPv6 ones too), or an IPv6 /64. Past it: close 1008 `too many connections`
   * (TCP: the connection is dropped). Default: 1000.
   */
  maxConnectionsPerIp?: number;
  /** Open connections (counted as for `maxConnectionsPerIp`) on this node, refused alike. Default: 100000. */
  maxConnections?: number;
  /**
   * Messages one WebSocket connection may send per second, and in one burst (past it: close 1008
   * `rate limit`); chunks one TCP connection may send per second (past it: it is not read until
   * the next one may go). A targeted message costs one per target. Default: 100.
   */
  maxMessagesPerSecond?: number;
  /**
   * Messages (TCP: chunks) one connection may have waiting behind a slow task (a hook, a Redis
   * call, a broadcast); at this many it stops being read until they are handled. Default: 100.
   */
  maxPending?: number;
  /** Bytes of those waiting messages; at this many the connection stops being read. Default: 1048576 (1 MiB). */
  maxPendingBytes?: number;
  /** How long a connection may stay unread on a full backlog before it is closed 1008 `too many pending`, in ms. Default: 10000. */
  pendingTimeout?: number;
  /**
   * How long `authenticate`, `authorize` and `authorizeTarget` may take to answer, in ms; past it
   * they refuse (401, `forbidden`, the target reported unknown). Default: 5000.
   */
  hookTimeout?: number;
  /** Ids one targeted message may list; more: `{"error": "too many targets"}`, nothing sent. Default: 100. */
  maxTargets?: number;
  /**
   * Presence entries over which a channel's full-list listeners get counts instead of diffs, until
   * it falls back (then a fresh `members` frame). Default: 1000.
   */
  presenceMax?: number;
  /** How often every WebSocket connection is pinged, in ms; also the TCP keep-alive delay. Default: 25000. */
  pingInterval?: number;
  /** A connection silent (no pong, no message) for `pingInterval + pingTimeout` ms is terminated. Default: 20000. */
  pingTimeout?: number;
  /**
   * Verifies each client at the HTTP upgrade (see `Authenticate`); a refusal is HTTP 401. Its
   * `id` replaces `?id=`, and a verified id may hold several connections. `jwtAuthenticator` makes
   * one for JWT connection tokens. Default: none, every client is let in.
   */
  authenticate?: Authenticate;
  /**
   * JWT connection tokens: the key and how the claims are checked (see `jwtAuthenticator`, which
   * makes the `authenticate` hook from them; give one or the other). Default: none.
   */
  jwt?: JwtOptions & { key: JwtKey };
  /**
   * Origins a browser's upgrade may come from (others: HTTP 403), or "*"; with `page`, the page's
   * own origin always may. Default: "*".
   */
  allowedOrigins?: readonly string[] | "*";
  /** PEM certificate (chain) and private key: the WebSocket listener serves `wss://`. Default: none. */
  tls?: TlsFiles;
  /** Port of the admin listener (`/metrics`, `/healthz`, `/readyz`); 0 picks a free one. Default: none. */
  adminPort?: number;
  /** Address the admin listener binds to. Default: 127.0.0.1 (never `host`, so it is not public by accident). */
  adminHost?: string;
  /**
   * Port of the server API's listener (`POST /api/METHOD`, see docs/server.md#server-api); 0 picks
   * a free one. Needs `apiKey`. Default: none, no API.
   */
  apiPort?: number;
  /** Address the API listener binds to. Default: 127.0.0.1 (never `host`). */
  apiHost?: string;
  /**
   * The key every API request must carry (`Authorization: apikey KEY` or `X-API-Key: KEY`), at
   * least 32 bytes (a string is taken as UTF-8). Default: none.
   */
  apiKey?: string | Uint8Array;
  /** Where the server logs (listeners, refusals at warn). Default: nothing is logged. */
  logger?: Logger;
  /**
   * Decides whether a WebSocket client may join a channel: `(channel, id)` with the connection's
   * id (or undefined), sync or async; false, a throw, a rejection or no answer within
   * `hookTimeout` refuses with `{"error": "forbidden", "join": CH}`. Default: everyone may join. No CLI flag: it is code.
   */
  authorize?: (channel: string, id: string | undefined) => boolean | Promise<boolean>;
  /**
   * Decides whether a WebSocket client may send a targeted message to an id (see
   * `AuthorizeTarget`); a refused target is reported as unknown. Default: any. No CLI flag: it is code.
   */
  authorizeTarget?: AuthorizeTarget;
  /**
   * Says kept per channel (issue 18): each say then carries its channel's `offset` and `epoch`,
   * a join answers with the channel's position, and a client that comes back with `recover`
   * gets exactly what it missed. 0: off. Kept in this process alone, in the cluster primary with
   * workers, in Redis with `spread: { redis }` (a say there waits for one round trip). Default: 0.
   */
  historySize?: number;
  /** How long a say is kept, and a channel's history once nothing is said there, in seconds. Default: 300. */
  historyTtl?: number;
  /** The most says one recovery may return; more missed: `recovered: false`. Default: `historySize`. */
  recoverMax?: number;
  /**
   * Serve the page on the WebSocket port: plain HTTP `GET /` answers a page to chat, see who is
   * here and watch reconnection (its files under `/page/` and the client library's modules under
   * `/client/`; any other path 404). False: every plain HTTP request gets 426. Default: true, or
   * false when `authenticate` or `jwt` is set.
   */
  page?: boolean;
  /** Say 1, 2, 3... into channel `ticker` five times a second, for the page to show recovery. Default: false. */
  demo?: boolean;
  /**
   * The other nodes this server serves with, as one service: `{ redis: url }` for every server
   * sharing that Redis (on any machine), `{ cluster: true }` in a worker of a node:cluster whose
   * primary is `runPrimary` (what `--workers` starts; see `joinPrimary`). Says, joins, targeted messages, `?id=`
   * claims and the TCP port then span every node. Default: none, this server alone.
   */
  spread?: Spread;
}

/** The default of every option that has one (the CLI shows them in `--help`). */
export const DEFAULTS = {
  host: "127.0.0.1",
  port: 4545,
  tcpPort: 1234,
  maxFrameSize: 64 * 1024,
  maxChannelLength: 128,
  graceMs: 2000,
  highWaterMark: 1024 * 1024,
  slowConsumer: "skip",
  maxChannelsPerConnection: 100,
  maxConnectionsPerIp: 1000,
  maxConnections: 100_000,
  maxMessagesPerSecond: 100,
  maxPending: 100,
  maxPendingBytes: 1024 * 1024,
  pendingTimeout: 10_000,
  hookTimeout: 5000,
  maxTargets: 100,
  presenceMax: 1000,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  adminHost: "127.0.0.1",
  apiHost: "127.0.0.1",
  historySize: 0,
  historyTtl: 300,
} as const;
