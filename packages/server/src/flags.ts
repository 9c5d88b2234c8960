import { Command, InvalidArgumentError, Option } from "commander";
import type { LevelWithSilent } from "pino";
import type { SlowConsumerPolicy } from "ws-channels";
import { REDIS_DEFAULTS } from "ws-channels/redis";
import { type ApiFlags, apiFlags } from "./api/flags.js";
import { JWT_CLOCK_TOLERANCE } from "./jwt.js";
import { LOG_LEVELS, type LogFormat } from "./log.js";
import { DEFAULTS } from "./options.js";
import { parseOrigins } from "./ws/upgrade.js";

function integer(min: number, max: number) {
  return (value: string): number => {
    const number = Number(value);
    if (!/^\d+$/.test(value) || number < min || number > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return number;
  };
}

function redisUrl(value: string): string {
  if (!/^(rediss?:\/\/|\/)\S+$/.test(value))
    throw new InvalidArgumentError("expected redis://host:port, rediss://host:port or a unix socket path");
  return value;
}

function originList(value: string): readonly string[] | "*" {
  try {
    return parseOrigins(value);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/** `--redis-prefix`: one or more characters, no white space. */
function redisPrefix(value: string): string {
  if (!/^\S+$/.test(value)) throw new InvalidArgumentError("expected a prefix of one or more characters, no spaces");
  return value;
}

const port = integer(0, 65535);
const count = integer(1, 2 ** 31 - 1);

/** The command line of `ws-channels`, as commander parsed and checked it. */
export interface Flags extends ApiFlags {
  host: string;
  port: number;
  tcpPort?: number;
  maxFrameSize: number;
  maxChannelLength: number;
  highWaterMark: number;
  slowConsumer: SlowConsumerPolicy;
  maxChannelsPerConnection: number;
  maxConnectionsPerIp: number;
  maxConnections: number;
  maxMessagesPerSecond: number;
  maxTargets: number;
  presenceMax: number;
  maxPending: number;
  maxPendingBytes: number;
  pendingTimeout: number;
  hookTimeout: number;
  pingInterval: number;
  pingTimeout: number;
  jwtSecretFile?: string;
  jwtPublicKeyFile?: string;
  jwtAudience?: string;
  jwtIssuer?: string;
  jwtMaxAge?: number;
  jwtClockTolerance: number;
  jwtRequireChannels: boolean;
  allowedOrigins: readonly string[] | "*";
  tlsCert?: string;
  tlsKey?: string;
  adminPort?: number;
  adminHost: string;
  logLevel: LevelWithSilent;
  logFormat?: LogFormat;
  workers: number;
  workerBacklogBytes: number;
  redis?: string;
  redisPrefix: string;
  historySize: number;
  historyTtl: number;
  recoverMax?: number;
  /** Undefined: on, unless a JWT key is given. */
  page?: boolean;
  demo: boolean;
}

/**
 * Parses `argv` (process.argv by default). `--help` prints every flag and exits 0; a bad value
 * exits 1 with the reason (commander's handling).
 */
export function parseFlags(argv?: readonly string[]): Flags {
  const command = program().parse(argv);
  const flags = command.opts<Flags>();
  if (flags.redis === undefined && command.getOptionValueSource("redisPrefix") === "cli")
    command.error("error: --redis-prefix goes with --redis");
  return flags;
}

function program(): Command {
  return apiFlags(new Command("ws-channels"))
    .description("WebSocket channels server with a TCP broadcast port")
    .option("--host <address>", "address the WebSocket and TCP listeners bind to", DEFAULTS.host)
    .option("--workers <n>", "server processes sharing the ports (node:cluster); 0: one per core; 1: one process", integer(0, 1024), 1)
    .option("--worker-backlog-bytes <bytes>", "with --workers: bytes held for a worker that stops reading; more: dropped", count, 2 ** 26)
    .option(
      "--redis <url>",
      "serve as one with every server sharing this Redis (redis://host:port, rediss:// for TLS, or a unix socket path)",
      redisUrl,
    )
    .option(
      "--redis-prefix <prefix>",
      "what every Redis name of this service starts with: servers on one Redis with another prefix never see its says, ids or targets",
      redisPrefix,
      REDIS_DEFAULTS.prefix,
    )
    .option("--port <port>", "WebSocket port (0: any free port)", port, DEFAULTS.port)
    .option("--history-size <n>", "says kept per channel, with offsets, for clients to recover (0: off)", integer(0, 2 ** 20), 0)
    .option("--history-ttl <seconds>", "how long a say is kept, and a channel's history once idle", count, DEFAULTS.historyTtl)
    .option(
      "--recover-max <n>",
      "most says one recovery returns; more missed: recovered false (default: --history-size)",
      integer(0, 2 ** 20),
    )
    .option("--page", "serve the page on the WebSocket port even with a JWT key")
    .option("--no-page", "plain HTTP on the WebSocket port gets 426, no page (default: the page at / unless a JWT key is given)")
    .option("--demo", "say 1, 2, 3... into channel ticker five times a second (in the first worker only)", false)
    .option(
      "--tcp-port <port>",
      `TCP broadcast port (0: any free port) (default: ${DEFAULTS.tcpPort}; with a JWT key: off unless given)`,
      port,
    )
    .option(
      "--max-frame-size <bytes>",
      "largest WebSocket message (frame, or fragmented message) a client may send; larger: close 1009",
      count,
      DEFAULTS.maxFrameSize,
    )
    .option("--max-channel-length <chars>", "longest channel name", integer(1, 2 ** 20), DEFAULTS.maxChannelLength)
    .option("--high-water-mark <bytes>", "unsent bytes over which a client is a slow consumer", count, DEFAULTS.highWaterMark)
    .option("--max-channels-per-connection <n>", "channels one WebSocket connection may be in", count, DEFAULTS.maxChannelsPerConnection)
    .option(
      "--max-connections-per-ip <n>",
      "connections from one IPv4 address or IPv6 /64; more: 1008",
      count,
      DEFAULTS.maxConnectionsPerIp,
    )
    .option("--max-connections <n>", "connections (WebSocket, upgrades, TCP) on this node; more: 1008", count, DEFAULTS.maxConnections)
    .option(
      "--max-messages-per-second <n>",
      "messages one WebSocket connection may send per second (and in a burst), more: close 1008; TCP chunks, more: not read until due",
      count,
      DEFAULTS.maxMessagesPerSecond,
    )
    .option(
      "--max-targets <n>",
      'ids one targeted message may list; more: {"error": "too many targets"}; each costs one message of the rate',
      count,
      DEFAULTS.maxTargets,
    )
    .option(
      "--presence-max <n>",
      "presence entries over which a channel's full-list listeners get counts instead of diffs",
      integer(0, 2 ** 31 - 1),
      DEFAULTS.presenceMax,
    )
    .option("--max-pending <n>", "messages waiting behind a slow task, per connection; more: not read", count, DEFAULTS.maxPending)
    .option("--max-pending-bytes <bytes>", "bytes of those waiting messages; more: not read", count, DEFAULTS.maxPendingBytes)
    .option("--pending-timeout <ms>", "close a connection left unread this long (1008 too many pending)", count, DEFAULTS.pendingTimeout)
    .option("--hook-timeout <ms>", "how long each hook may take to answer; then it refuses", count, DEFAULTS.hookTimeout)
    .addOption(
      new Option("--slow-consumer <policy>", "skip: it misses messages while slow; close: WebSocket close 1013")
        .choices(["skip", "close"])
        .default(DEFAULTS.slowConsumer),
    )
    .option("--ping-interval <ms>", "ping each WebSocket connection this often; TCP keep-alive delay", count, DEFAULTS.pingInterval)
    .option("--ping-timeout <ms>", "terminate a connection silent for ping-interval + ping-timeout", count, DEFAULTS.pingTimeout)
    .option("--jwt-secret-file <path>", "require JWT connection tokens, HS256 with the secret in this file (or WS_CHANNELS_JWT_SECRET)")
    .option("--jwt-public-key-file <path>", "require JWT connection tokens, RS256 or ES256 with this PEM public key")
    .option("--jwt-audience <aud>", "a token must hold this aud claim (default: not checked)")
    .option("--jwt-issuer <iss>", "a token must hold this iss claim (default: not checked)")
    .option("--jwt-max-age <seconds>", "a token may be this old (from its iat), and then needs no exp (default: exp required)", count)
    .option("--jwt-clock-tolerance <seconds>", "clock skew allowed on exp, nbf and iat", integer(0, 2 ** 31 - 1), JWT_CLOCK_TOLERANCE)
    .option("--jwt-require-channels", "a token without a channels claim may join no channel, instead of every one", false)
    .option(
      "--allowed-origins <list>",
      "comma-separated origins a browser may connect from, or * for any; others: HTTP 403",
      originList,
      "*",
    )
    .option("--tls-cert <file>", "PEM certificate (chain): serve wss:// (with --tls-key)")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--admin-port <port>", "admin listener for /metrics, /healthz, /readyz (0: any free port) (default: off)", port)
    .option("--admin-host <address>", "address the admin listener binds to", DEFAULTS.adminHost)
    .addOption(new Option("--log-level <level>", "least severe level logged").choices(LOG_LEVELS).default("info"))
    .addOption(new Option("--log-format <format>", "log lines (default: text on a terminal, else json)").choices(["text", "json"]));
}
