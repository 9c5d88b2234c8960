import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { Channels } from "ws-channels";
import type { Adapter } from "./adapters/adapter.js";
import { createAdapter, START_WAIT_MS } from "./adapters/index.js";
import { type Bound, url } from "./address.js";
import { AdminServer } from "./admin.js";
import { ServerApi } from "./api/index.js";
import type { ClientMeta } from "./client-meta.js";
import { HeldIds } from "./ids/held.js";
import { sampled } from "./log.js";
import { ServerMetrics } from "./metrics.js";
import type { ServerOptions } from "./options.js";
import { loadPage } from "./page/files.js";
import { servePage, upgradeRequired } from "./page/serve.js";
import { startTicker, TICKER_CHANNEL } from "./page/ticker.js";
import { resolveSettings } from "./settings.js";
import { Slots } from "./slots.js";
import { Targets } from "./targets.js";
import { TcpBroadcastServer } from "./tcp-server.js";
import { answered, settledWithin } from "./wait.js";
import { Admission } from "./ws/admission.js";
import { closeRefused, type Refused } from "./ws/close-codes.js";
import { joinHistory } from "./ws/history-join.js";
import { entryOf, serverPresence } from "./ws/presence.js";

export type { Spread } from "./adapters/index.js";
export type { Authenticate, AuthorizeTarget, Identity } from "./auth.js";
export type { ClientMeta } from "./client-meta.js";
export { JWT_CLOCK_TOLERANCE, type JwtKey, type JwtOptions, jwtAuthenticator, publicKey, secretKey } from "./jwt.js";
export { DEFAULTS, type ServerOptions } from "./options.js";
export { type PrimaryLog, type PrimaryOptions, runPrimary } from "./primary.js";
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
  /** The server API's listener; undefined unless `apiPort` was given. */
  readonly api: Bound | undefined;
  /** This server's Prometheus registry (what `/metrics` serves). */
  readonly registry: Registry;
  /**
   * Open WebSocket connections, ids in use, distinct clients (IPv4 addresses, IPv6 /64s) and the
   * connection slots they hold (WebSocket, upgrades being verified, TCP), now.
   */
  connections(): { connections: number; ids: number; addresses: number; slots: number };
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
  const { log, graceMs, tcp: tcpAt, admin: adminAt, history: kept } = settings;
  const ticker = settings.demo ? TICKER_CHANNEL : null;
  const page = settings.admission.page && (await loadPage({ history: kept !== undefined, ticker }));
  const adapter = await createAdapter(settings.spread);
  const { broker } = adapter;
  const { highWaterMark, slowConsumer, authorize, hookTimeout } = settings.channels;
  const mayJoin =
    authorize && ((channel: string, id: string | undefined) => answered(() => authorize(channel, id), hookTimeout, "authorize"));
  const channels = new Channels<ClientMeta>({
    ...(broker && { broker }),
    highWaterMark,
    slowConsumer,
    ...(mayJoin && { authorize: (channel, _member, meta) => mayJoin(String(channel), meta?.id) }),
  });
  const history = settings.history && joinHistory(adapter.history(settings.history, channels), mayJoin);
  const stopTicker = ticker === null ? undefined : startTicker(channels, history?.store);
  // so that the first clients' joins are subscribed and their ids claimed for real
  const connected = await adapter.ready();
  let closing: Promise<void> | undefined;
  const slots = new Slots(settings.slots.maxPerIp, settings.slots.maxTotal);
  // Counted in this one place, whichever listener refused; logged at most once a second per reason.
  const sample = sampled(1000);
  const refused: Refused = (reason, address, detail) => {
    metrics.refused(reason);
    sample(reason, (unlogged) =>
      log.warn({ reason, address, ...(detail !== undefined && { detail }), ...(unlogged > 0 && { unlogged }) }, "refused"),
    );
  };
  const tcpServer =
    tcpAt &&
    new TcpBroadcastServer(channels, tcpAt, slots, {
      refused,
      paused: (reason) => metrics.paused("tcp", reason),
      held: (bytes) => metrics.held("tcp", bytes),
    });
  // What /readyz waits for: each listener there is, and the broker when there is one.
  const up: Record<string, boolean> = tcpServer ? { ws: false, tcp: false } : { ws: false };
  if (broker) watchBroker(adapter, broker.stats().subscriptions, connected, up, log);
  // What spans nodes, handed to the WebSocket side here and only here: ids and targeted messages.
  const held = new HeldIds(
    adapter,
    (ws) => closeRefused(ws, "id_in_use", "", refused),
    (_id, error) => log.error({ err: error }, "id claim failed: the connection is closed 1011"),
  );
  const targets = new Targets(channels, held, adapter, settings.admission.authenticate !== undefined);
  const backlog = { paused: () => metrics.paused("ws", "backlog"), held: (bytes: number) => metrics.held("ws", bytes) };
  const presenceOptions = { max: settings.presenceMax, highWaterMark, slowConsumer };
  const presence = adapter.presence({ channels, local: (over, partial) => serverPresence(over, presenceOptions, partial), entry: entryOf });
  const hook = settings.authorizeTarget;
  const authorizeTarget =
    hook && ((from: string | undefined, to: string) => answered(() => hook(from, to), hookTimeout, "authorizeTarget"));
  // a refresh is verified as the upgrade was, within the same hook timeout
  const { authenticate } = settings.admission;
  const services = {
    channels,
    targets,
    limits: settings.session,
    refused,
    backlog,
    authorizeTarget,
    history,
    presence,
    authenticate,
    hookTimeout,
  };
  const admission = new Admission(settings.admission, slots, held, services, log, page ? servePage(page) : upgradeRequired);
  const metrics = new ServerMetrics({
    connections: () => ({ ws: admission.stats().connections, tcp: tcpServer?.connections ?? 0 }),
    stats: () => channels.stats(),
    broker: broker !== undefined,
    unsent: () => adapter.stats().unsent,
    invalid: () => targets.invalid,
  });
  const api = new ServerApi(settings, { adapter, channels, held, targets, presence, history }, metrics.api);
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
      stopTicker?.();
      await settledWithin(Promise.all([channels.close(), presence.close()]), graceMs);
      await Promise.all([admission.close(graceMs), tcpServer?.close(graceMs)]);
      await settledWithin(adapter.close(), graceMs);
      history?.store.close();
      await Promise.all([admin?.close(), api.close()]);
    })());
  try {
    const listening = async (part: string, started: Promise<Bound>): Promise<Bound> => {
      const bound = await started;
      up[part] = true;
      return bound;
    };
    const [ws, tcp, adminBound, apiBound] = await Promise.all([
      listening("ws", admission.listen()),
      tcpAt && tcpServer && listening("tcp", tcpServer.listen(tcpAt.host, tcpAt.port)),
      adminAt && admin?.listen(adminAt.host, adminAt.port),
      api.listen(),
    ]);
    log.info(`WebSocket listening on ${url(settings.admission.tls ? "wss" : "ws", ws)}`);
    if (page) log.info(`page on ${url(settings.admission.tls ? "https" : "http", ws)}/`);
    if (tcp) log.info(`TCP broadcast listening on ${url("tcp", tcp)}`);
    else
      log.info(
        `TCP broadcast port off${settings.admission.authenticate ? " (it cannot authenticate: give --tcp-port to open it anyway)" : ""}`,
      );
    if (adminBound) log.info(`admin (/metrics, /healthz, /readyz) listening on ${url("http", adminBound)}`);
    if (apiBound) log.info(`API listening on ${url("http", apiBound)}/api/`);
    return { channels, ws, tcp, admin: adminBound, api: apiBound, registry: metrics.registry, connections: () => admission.stats(), close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/** Keeps `up.broker` true while the broker carries broadcasts between nodes, and logs each change. */
function watchBroker(adapter: Adapter, subscriptions: number, connected: boolean, up: Record<string, boolean>, log: Logger): void {
  up.broker = connected;
  if (connected) log.info({ subscriptions }, "broker up: serving with every node");
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
