import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Broker } from "../brokers/broker.js";
import { Channels } from "../channels.js";
import { type Bound, url } from "./address.js";
import { AdminServer } from "./admin.js";
import type { ClientMeta } from "./client-meta.js";
import { HeldIds } from "./ids/held.js";
import { ServerMetrics } from "./metrics.js";
import { nodes, START_WAIT_MS } from "./nodes.js";
import { resolveSettings, type ServerOptions } from "./settings.js";
import { Targets } from "./targets.js";
import { TcpBroadcastServer } from "./tcp-server.js";
import { settledWithin } from "./wait.js";
import { Admission } from "./ws/admission.js";
import { closeRefused, type Refused } from "./ws/close-codes.js";

export type { Authenticate, AuthorizeTarget, Identity } from "./auth.js";
export type { ClientMeta } from "./client-meta.js";
export { JWT_CLOCK_TOLERANCE, type JwtKey, type JwtOptions, jwtAuthenticator, publicKey, secretKey } from "./jwt.js";
export type { Spread } from "./nodes.js";
export { type PrimaryOptions, runPrimary } from "./primary.js";
export { DEFAULTS, type ServerOptions } from "./settings.js";
export { joinPrimary } from "./worker.js";
export type { TlsFiles } from "./ws/listener.js";

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
 * @throws rejects with a RangeError for a bad `pingInterval` or `pingTimeout` or a too short
 *   `jwt.key`, a TypeError for a bad `allowedOrigins` entry or `jwt` with `authenticate`, the TLS
 *   error for a bad certificate or key, or the listen error (EADDRINUSE, say), after closing
 *   whatever had started.
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const settings = resolveSettings(options);
  const { log, graceMs, tcp: tcpAt, admin: adminAt } = settings;
  const { broker, registry, remote, connected: connect } = await nodes(settings.spread);
  const { highWaterMark, slowConsumer, authorize } = settings.channels;
  const channels = new Channels<ClientMeta>({
    ...(broker && { broker }),
    highWaterMark,
    slowConsumer,
    ...(authorize && { authorize: (channel, _member, meta) => authorize(String(channel), meta?.id) }),
  });
  // so that the first clients' joins are subscribed and their ids claimed for real
  const connected = await connect();
  let closing: Promise<void> | undefined;
  const tcpServer = tcpAt && new TcpBroadcastServer(channels, tcpAt.keepAliveMs);
  // What /readyz waits for: each listener there is, and the broker when there is one.
  const up: Record<string, boolean> = tcpServer ? { ws: false, tcp: false } : { ws: false };
  if (broker) watchBroker(broker, connected, up, log);
  // Counted and logged in this one place, whichever listener refused.
  const refused: Refused = (reason, address, detail) => {
    metrics.refused(reason);
    log.warn({ reason, address, ...(detail !== undefined && { detail }) }, "refused");
  };
  // What spans nodes, handed to the WebSocket side here and only here: ids and targeted messages.
  const held = new HeldIds(registry, (ws) => closeRefused(ws, "id_in_use", "", refused));
  const targets = new Targets(channels, held, registry, settings.admission.authenticate !== undefined);
  const admission = new Admission(
    settings.admission,
    held,
    { channels, targets, limits: settings.session, refused, authorizeTarget: settings.authorizeTarget },
    log,
  );
  const wsListening = async (): Promise<Bound> => {
    // other nodes' targeted messages must find this node before its clients can be targeted
    if (remote) await targets.listen();
    return admission.listen();
  };
  const metrics = new ServerMetrics({
    connections: () => ({ ws: admission.stats().connections, tcp: tcpServer?.connections ?? 0 }),
    stats: () => channels.stats(),
    broker: broker !== undefined,
  });
  const admin =
    adminAt &&
    new AdminServer(metrics.registry, () => ({
      ready: closing === undefined && Object.values(up).every(Boolean),
      closing: closing !== undefined,
      ...up,
    }));
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Each step is bounded, so that a broker or Redis that stopped answering cannot hold the
      // shutdown; ids are released only once their connections are closed.
      await settledWithin(channels.close(), graceMs);
      await Promise.all([admission.close(graceMs), tcpServer?.close(graceMs)]);
      await settledWithin(registry.close(), graceMs);
      await admin?.close();
    })());
  try {
    const listening = async (part: string, started: Promise<Bound>): Promise<Bound> => {
      const bound = await started;
      up[part] = true;
      return bound;
    };
    const [ws, tcp, adminBound] = await Promise.all([
      listening("ws", wsListening()),
      tcpAt && tcpServer && listening("tcp", tcpServer.listen(tcpAt.host, tcpAt.port)),
      adminAt && admin?.listen(adminAt.host, adminAt.port),
    ]);
    log.info(`WebSocket listening on ${url(settings.admission.tls ? "wss" : "ws", ws)}`);
    if (tcp) log.info(`TCP broadcast listening on ${url("tcp", tcp)}`);
    else
      log.info(
        `TCP broadcast port off${settings.admission.authenticate ? " (it cannot authenticate: give --tcp-port to open it anyway)" : ""}`,
      );
    if (adminBound) log.info(`admin (/metrics, /healthz, /readyz) listening on ${url("http", adminBound)}`);
    return { channels, ws, tcp, admin: adminBound, registry: metrics.registry, connections: () => admission.stats(), close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/** Keeps `up.broker` true while the broker carries broadcasts between nodes, and logs each change. */
function watchBroker(broker: Broker, connected: boolean, up: Record<string, boolean>, log: Logger): void {
  up.broker = broker.stats().connected;
  if (connected) log.info({ subscriptions: broker.stats().subscriptions }, "broker up: serving with every node");
  else log.info(`broker down: not connected within ${START_WAIT_MS} ms, serving this node's clients only until it is`);
  broker.on("down", (reason) => {
    up.broker = false;
    log.info({ reason: reason?.message }, "broker down: serving this node's clients only");
  });
  broker.on("up", (subscriptions) => {
    up.broker = true;
    log.info({ subscriptions }, "broker up: serving with every node");
  });
}
