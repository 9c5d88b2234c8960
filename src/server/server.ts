import cluster from "node:cluster";
import type { Logger } from "pino";
import { pino } from "pino";
import { AggregatorRegistry, type Registry } from "prom-client";
import { Channels } from "../channels.js";
import type { SlowConsumerPolicy } from "../options.js";
import { createAdapter, type Spread, START_WAIT_MS } from "./adapters/index.js";
import { type Bound, url } from "./address.js";
import { AdminServer } from "./admin.js";
import type { Authenticate } from "./auth.js";
import type { ClientMeta } from "./client-meta.js";
import type { TlsFiles } from "./listener.js";
import { type RefusalReason, ServerMetrics } from "./metrics.js";
import { report } from "./primary.js";
import { TcpBroadcastServer } from "./tcp-server.js";
import { origins } from "./upgrade.js";
import { settledWithin } from "./wait.js";
import { WsProtocolServer } from "./ws-server.js";

export type { Spread } from "./adapters/index.js";
export type { Authenticate, Identity } from "./auth.js";
export type { ClientMeta } from "./client-meta.js";
export { type JwtKey, jwtAuthenticator, publicKey, secretKey } from "./jwt.js";
export type { TlsFiles } from "./listener.js";
export { type PrimaryOptions, runPrimary } from "./primary.js";

/** Options of `startServer`; every one has the default the CLI shows in `--help`. */
export interface ServerOptions {
  /** Address the WebSocket and TCP listeners bind to. Default: 127.0.0.1. */
  host?: string;
  /** WebSocket port; 0 picks a free one. Default: 4545. */
  port?: number;
  /**
   * TCP broadcast port; 0 picks a free one; false: no TCP listener. Default: 1234, or false when
   * `authenticate` is set (the TCP port cannot authenticate).
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
  /** Open WebSocket connections from one IP address. Default: 1000. */
  maxConnectionsPerIp?: number;
  /** Messages one WebSocket connection may send per second, and in one burst. Default: 100. */
  maxMessagesPerSecond?: number;
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
  /** Origins a browser's upgrade may come from (others: HTTP 403), or "*". Default: "*". */
  allowedOrigins?: readonly string[] | "*";
  /** PEM certificate (chain) and private key: the WebSocket listener serves `wss://`. Default: none. */
  tls?: TlsFiles;
  /** Port of the admin listener (`/metrics`, `/healthz`, `/readyz`); 0 picks a free one. Default: none. */
  adminPort?: number;
  /** Address the admin listener binds to. Default: 127.0.0.1 (never `host`, so it is not public by accident). */
  adminHost?: string;
  /** Where the server logs (listeners, refusals at warn). Default: nothing is logged. */
  logger?: Logger;
  /**
   * Decides whether a WebSocket client may join a channel: `(channel, id)` with the connection's
   * id (or undefined), sync or async; false, a throw or a rejection refuses with
   * `{"error": "forbidden", "join": CH}`. Default: everyone may join. No CLI flag: it is code.
   */
  authorize?: (channel: string, id: string | undefined) => boolean | Promise<boolean>;
  /**
   * The other nodes this server serves with, as one service: `{ redis: url, prefix? }` for every
   * server sharing that Redis (on any machine) under the same key prefix (default `ws-channels`),
   * `{ cluster: true }` in a worker of a node:cluster whose primary is `runPrimary` (what
   * `--workers` starts). Says, joins, targeted messages, `?id=` claims and the TCP port then span
   * every node. Default: none, this server alone.
   */
  spread?: Spread;
}

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
  maxMessagesPerSecond: 100,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  adminHost: "127.0.0.1",
} as const;

/** A started server: where it listens, its metrics, and how to stop it. */
export interface RunningServer {
  readonly channels: Channels<ClientMeta>;
  readonly ws: Bound;
  /** Undefined when the TCP port is off. */
  readonly tcp: Bound | undefined;
  /** Undefined unless `adminPort` was given. */
  readonly admin: Bound | undefined;
  /** This server's Prometheus registry (what `/metrics` serves). */
  readonly registry: Registry;
  /** Open WebSocket connections, ids in use, and distinct client addresses, now. */
  connections(): { connections: number; ids: number; addresses: number };
  /** Stops the listeners, closes every connection (WebSocket close 1001), finishes broadcasts. */
  close(): Promise<void>;
}

/**
 * Starts the WebSocket server, the TCP broadcast server (unless off) and the admin listener (if
 * `adminPort` is given), sharing one `Channels`.
 * @throws rejects with a RangeError for a bad `pingInterval` or `pingTimeout`, a TypeError for a
 *   bad `allowedOrigins` entry, the TLS error for a bad certificate or key, or the listen error
 *   (EADDRINUSE, say), after closing whatever had started.
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const settings = { ...DEFAULTS, ...options };
  for (const name of ["pingInterval", "pingTimeout"] as const) {
    const value = settings[name];
    if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1)
      throw new RangeError(`${name} must be an integer of ms >= 1, got ${value}`);
  }
  const { authorize, authenticate, adminPort } = options;
  const tcpPort = options.tcpPort ?? (authenticate === undefined ? DEFAULTS.tcpPort : false);
  const log = options.logger ?? pino({ enabled: false });
  const allowedOrigins = settings.allowedOrigins === undefined || settings.allowedOrigins === "*" ? "*" : origins(settings.allowedOrigins);
  const adapter = await createAdapter(options.spread);
  const { broker } = adapter;
  const channels = new Channels<ClientMeta>({
    ...(broker && { broker }),
    highWaterMark: settings.highWaterMark,
    slowConsumer: settings.slowConsumer,
    ...(authorize && { authorize: (channel, _member, meta) => authorize(String(channel), meta?.id) }),
  });
  // so that the first clients' joins are subscribed and their ids claimed for real
  const connected = await adapter.ready();
  let closing: Promise<void> | undefined;
  const tcpServer = tcpPort === false ? undefined : new TcpBroadcastServer(channels, settings.pingInterval);
  // What /readyz waits for: each listener there is, and the broker when there is one.
  const up: Record<string, boolean> = tcpServer ? { ws: false, tcp: false } : { ws: false };
  if (broker) {
    up.broker = broker.stats().connected;
    if (connected) log.info({ subscriptions: broker.stats().subscriptions }, "broker up: serving with every node");
    else log.info(`broker down: not connected within ${START_WAIT_MS} ms, serving this node's clients only until it is`);
    adapter.on("down", (reason) => {
      up.broker = false;
      log.info({ reason: reason?.message }, "broker down: serving this node's clients only");
    });
    adapter.on("up", (subscriptions) => {
      up.broker = true;
      log.info({ subscriptions }, "broker up: serving with every node");
    });
  }
  // Counted and logged in this one place, whichever listener refused.
  const refused = (reason: RefusalReason, address: string, detail?: string): void => {
    metrics.refused(reason);
    log.warn({ reason, address, ...(detail !== undefined && { detail }) }, "refused");
  };
  const wsServer = new WsProtocolServer(channels, {
    ...settings,
    admission: { allowedOrigins, authenticate },
    adapter,
    log,
    refused,
  });
  const metrics = new ServerMetrics({
    connections: () => ({ ws: wsServer.stats().connections, tcp: tcpServer?.connections ?? 0 }),
    stats: () => channels.stats(),
    broker: broker !== undefined,
    unsent: () => adapter.stats().unsent,
  });
  const admin =
    adminPort === undefined
      ? undefined
      : new AdminServer(metrics.registry, () => ({
          ready: closing === undefined && Object.values(up).every(Boolean),
          closing: closing !== undefined,
          ...up,
        }));
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Each step is bounded, so that a broker or Redis that stopped answering cannot hold the
      // shutdown; ids are released only once their connections are closed.
      await settledWithin(channels.close(), settings.graceMs);
      await Promise.all([wsServer.close(settings.graceMs), tcpServer?.close(settings.graceMs)]);
      await settledWithin(adapter.close(), settings.graceMs);
      await admin?.close();
    })());
  try {
    const listening = async (part: string, started: Promise<Bound>): Promise<Bound> => {
      const bound = await started;
      up[part] = true;
      return bound;
    };
    const [ws, tcp, adminBound] = await Promise.all([
      listening("ws", wsServer.listen()),
      tcpPort === false ? undefined : tcpServer && listening("tcp", tcpServer.listen(settings.host, tcpPort)),
      adminPort === undefined ? undefined : admin?.listen(settings.adminHost, adminPort),
    ]);
    log.info(`WebSocket listening on ${url(settings.tls ? "wss" : "ws", ws)}`);
    if (tcp) log.info(`TCP broadcast listening on ${url("tcp", tcp)}`);
    else log.info(`TCP broadcast port off${authenticate ? " (it cannot authenticate: give --tcp-port to open it anyway)" : ""}`);
    if (adminBound) log.info(`admin (/metrics, /healthz, /readyz) listening on ${url("http", adminBound)}`);
    if (cluster.isWorker) {
      // the primary sums its workers' metrics, and logs this worker as started
      new AggregatorRegistry(); // in a worker, making one is what answers the primary's requests
      AggregatorRegistry.setRegistries([metrics.registry]);
      report({ wsChannels: "listening" });
    }
    return { channels, ws, tcp, admin: adminBound, registry: metrics.registry, connections: () => wsServer.stats(), close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
