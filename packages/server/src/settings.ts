import type { Logger } from "pino";
import { pino } from "pino";
import type { SlowConsumerPolicy } from "ws-channels";
import type { Spread } from "./adapters/index.js";
import { ApiKey } from "./api/key.js";
import type { ApiSettings } from "./api/server.js";
import type { AuthorizeTarget } from "./auth.js";
import type { HistorySettings } from "./history.js";
import { jwtAuthenticator } from "./jwt.js";
import { DEFAULTS, type ServerOptions } from "./options.js";
import type { TcpLimits } from "./tcp-server.js";
import type { AdmissionSettings } from "./ws/admission.js";
import type { SessionLimits } from "./ws/session.js";
import { origins } from "./ws/upgrade.js";

/** `ServerOptions` with every default filled in and every value checked, in the parts each listener takes. */
export interface Settings {
  /** What the server's `Channels` is made with. */
  readonly channels: {
    readonly highWaterMark: number;
    readonly slowConsumer: SlowConsumerPolicy;
    readonly authorize: ServerOptions["authorize"];
    /** How long `authorize` may take, in ms. */
    readonly hookTimeout: number;
  };
  /** Presence entries over which full-list listeners get counts. */
  readonly presenceMax: number;
  /** The node's connection slots, shared by both listeners. */
  readonly slots: { readonly maxPerIp: number; readonly maxTotal: number };
  /** The WebSocket listener and its upgrade checks. */
  readonly admission: AdmissionSettings;
  /** What each WebSocket connection may do. */
  readonly session: SessionLimits;
  readonly authorizeTarget: AuthorizeTarget | undefined;
  /** The TCP broadcast listener; undefined when it is off. */
  readonly tcp: (TcpLimits & { readonly host: string; readonly port: number }) | undefined;
  /** The admin listener; undefined when it is off. */
  readonly admin: { readonly host: string; readonly port: number } | undefined;
  /** The server API's listener; undefined when it is off. */
  readonly api: ApiSettings | undefined;
  /** How long each shutdown step may take, in ms. */
  readonly graceMs: number;
  readonly log: Logger;
  readonly spread: Spread | undefined;
  /** Says kept per channel; undefined: off. */
  readonly history: HistorySettings | undefined;
  /** Whether the demo ticker runs. */
  readonly demo: boolean;
}

/**
 * Fills in the defaults of `options` and checks what the types cannot.
 * @throws {RangeError} for a `pingInterval`, `pingTimeout`, `pendingTimeout` or `hookTimeout`
 *   that is not an integer of ms from 1 to 2^31 - 1 (what `setTimeout` takes).
 * @throws {TypeError} naming an `allowedOrigins` entry that is not an origin, or for an empty list;
 *   for `jwt` and `authenticate` both given.
 * @throws {RangeError} for a `jwt.key` shorter than RFC 7518 requires, or a bad `jwt.maxAge` or `jwt.clockTolerance`.
 * @throws {RangeError} for a `historySize` or `recoverMax` that is not an integer >= 0 or a
 *   `historyTtl` that is not an integer of seconds >= 1; for an `apiKey` under 32 bytes.
 * @throws {TypeError} for `apiPort` without `apiKey`.
 */
export function resolveSettings(options: ServerOptions): Settings {
  const given = { ...DEFAULTS, ...options };
  for (const name of ["pingInterval", "pingTimeout", "pendingTimeout", "hookTimeout"] as const) {
    const value = given[name];
    if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1)
      throw new RangeError(`${name} must be an integer of ms >= 1, got ${value}`);
  }
  if (given.jwt !== undefined && given.authenticate !== undefined) throw new TypeError("give jwt or authenticate, not both");
  const { host, pingInterval, jwt, hookTimeout, maxMessagesPerSecond } = given;
  const authenticate = jwt === undefined ? given.authenticate : jwtAuthenticator(jwt.key, jwt);
  const backlog = { maxPending: given.maxPending, maxPendingBytes: given.maxPendingBytes, pendingTimeout: given.pendingTimeout };
  // the TCP port cannot authenticate: with `authenticate` it is off unless asked for
  const tcpPort = options.tcpPort ?? (authenticate === undefined ? DEFAULTS.tcpPort : false);
  // a page that cannot get a token is no use on a server that requires one: asked for, it can pass `?token=`
  const page = options.page ?? authenticate === undefined;
  return {
    channels: { highWaterMark: given.highWaterMark, slowConsumer: given.slowConsumer, authorize: given.authorize, hookTimeout },
    presenceMax: given.presenceMax,
    slots: { maxPerIp: given.maxConnectionsPerIp, maxTotal: given.maxConnections },
    admission: {
      host,
      port: given.port,
      tls: given.tls,
      maxFrameSize: given.maxFrameSize,
      pingInterval,
      pingTimeout: given.pingTimeout,
      allowedOrigins: given.allowedOrigins === undefined || given.allowedOrigins === "*" ? "*" : origins(given.allowedOrigins),
      authenticate,
      hookTimeout,
      page,
    },
    session: {
      maxChannelLength: given.maxChannelLength,
      maxChannelsPerConnection: given.maxChannelsPerConnection,
      maxMessagesPerSecond,
      maxTargets: given.maxTargets,
      ...backlog,
    },
    authorizeTarget: given.authorizeTarget,
    tcp: tcpPort === false ? undefined : { host, port: tcpPort, keepAliveMs: pingInterval, maxMessagesPerSecond, ...backlog },
    admin: given.adminPort === undefined ? undefined : { host: given.adminHost, port: given.adminPort },
    api: apiSettings(given),
    graceMs: given.graceMs,
    log: given.logger ?? pino({ enabled: false }),
    spread: given.spread,
    history: historySettings(given),
    demo: given.demo ?? false,
  };
}

function historySettings(given: ServerOptions): HistorySettings | undefined {
  const { historySize: size = DEFAULTS.historySize, historyTtl = DEFAULTS.historyTtl, recoverMax = size } = given;
  for (const [name, value, min] of [
    ["historySize", size, 0],
    ["historyTtl", historyTtl, 1],
    ["recoverMax", recoverMax, 0],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
  if (size === 0) return undefined;
  return { size, ttlMs: historyTtl * 1000, recoverMax };
}

function apiSettings(given: ServerOptions): ApiSettings | undefined {
  const { apiPort: port, apiHost: host = DEFAULTS.apiHost, apiKey } = given;
  if (port === undefined) return undefined;
  if (apiKey === undefined) throw new TypeError("apiPort needs apiKey: every request to the server API must carry it");
  return {
    host,
    port,
    key: new ApiKey(apiKey),
    maxChannelLength: given.maxChannelLength ?? DEFAULTS.maxChannelLength,
    maxTargets: given.maxTargets ?? DEFAULTS.maxTargets,
  };
}
