#!/usr/bin/env node
import cluster from "node:cluster";
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Command, Option } from "commander";
import type { LevelWithSilent } from "pino";
import { REDIS_DEFAULTS } from "../brokers/redis-connections.js";
import type { SlowConsumerPolicy } from "../options.js";
import { count, integer, originList, port, redisPrefix, redisUrl } from "./flags.js";
import { jwtAuthenticator, loadJwtKey } from "./jwt.js";
import { createLogger, LOG_LEVELS, type LogFormat } from "./log.js";
import { report, runPrimary } from "./primary.js";
import { startServer } from "./server.js";
import { DEFAULTS, type ServerOptions } from "./settings.js";
import { joinPrimary } from "./worker.js";

const program = new Command("ws-channels")
  .description("WebSocket channels server with a TCP broadcast port")
  .option("--host <address>", "address the WebSocket and TCP listeners bind to", DEFAULTS.host)
  .option("--workers <n>", "server processes sharing the ports (node:cluster); 0: one per core; 1: one process", integer(0, 1024), 1)
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
    "connections from one IPv4 address or IPv6 /64; more: close 1008",
    count,
    DEFAULTS.maxConnectionsPerIp,
  )
  .option("--max-connections <n>", "connections (WebSocket, upgrades, TCP) on this node; more: close 1008", count, DEFAULTS.maxConnections)
  .option(
    "--max-messages-per-second <n>",
    "messages one WebSocket connection may send per second (and in a burst), more: close 1008; TCP chunks, more: not read until due",
    count,
    DEFAULTS.maxMessagesPerSecond,
  )
  .option("--max-pending <n>", "messages waiting behind a slow task, per connection; more: not read", count, DEFAULTS.maxPending)
  .option("--max-pending-bytes <bytes>", "bytes of those waiting messages; more: not read", count, DEFAULTS.maxPendingBytes)
  .option("--pending-timeout <ms>", "close a connection left unread this long (1008 too many pending)", count, DEFAULTS.pendingTimeout)
  .option("--hook-timeout <ms>", "how long authenticate and authorize may take; then they refuse", count, DEFAULTS.hookTimeout)
  .addOption(
    new Option("--slow-consumer <policy>", "skip: it misses messages while slow; close: WebSocket close 1013")
      .choices(["skip", "close"])
      .default(DEFAULTS.slowConsumer),
  )
  .option("--ping-interval <ms>", "ping every WebSocket connection this often; also the TCP keep-alive delay", count, DEFAULTS.pingInterval)
  .option("--ping-timeout <ms>", "terminate a connection silent for ping-interval + ping-timeout", count, DEFAULTS.pingTimeout)
  .option("--jwt-secret-file <path>", "require JWT connection tokens, HS256 with the secret in this file (or WS_CHANNELS_JWT_SECRET)")
  .option("--jwt-public-key-file <path>", "require JWT connection tokens, RS256 or ES256 with this PEM public key")
  .option("--allowed-origins <list>", "comma-separated origins a browser may connect from, or * for any; others: HTTP 403", originList, "*")
  .option("--tls-cert <file>", "PEM certificate (chain): serve wss:// (with --tls-key)")
  .option("--tls-key <file>", "PEM private key of --tls-cert")
  .option("--admin-port <port>", "admin listener for /metrics, /healthz, /readyz (0: any free port) (default: off)", port)
  .option("--admin-host <address>", "address the admin listener binds to", DEFAULTS.adminHost)
  .addOption(new Option("--log-level <level>", "least severe level logged").choices(LOG_LEVELS).default("info"))
  .addOption(new Option("--log-format <format>", "log lines (default: text on a terminal, else json)").choices(["text", "json"]))
  .parse();
const options = program.opts<{
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
  maxPending: number;
  maxPendingBytes: number;
  pendingTimeout: number;
  hookTimeout: number;
  pingInterval: number;
  pingTimeout: number;
  jwtSecretFile?: string;
  jwtPublicKeyFile?: string;
  allowedOrigins: readonly string[] | "*";
  tlsCert?: string;
  tlsKey?: string;
  adminPort?: number;
  adminHost: string;
  logLevel: LevelWithSilent;
  logFormat?: LogFormat;
  workers: number;
  redis?: string;
  redisPrefix: string;
}>();

const {
  jwtSecretFile,
  jwtPublicKeyFile,
  tlsCert,
  tlsKey,
  logLevel,
  logFormat,
  workers: asked,
  redis,
  redisPrefix: prefix,
  ...settings
} = options;
if (redis === undefined && program.getOptionValueSource("redisPrefix") === "cli") program.error("error: --redis-prefix goes with --redis");
const workers = asked === 0 ? availableParallelism() : asked;
// a worker's lines say which worker wrote them (pid is in JSON lines, not in text ones)
const log = cluster.isWorker ? createLogger(logLevel, logFormat).child({ worker: cluster.worker?.id }) : createLogger(logLevel, logFormat);

/** Reads the file a flag names; the error names the flag. */
async function read(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new Error(`${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

if (cluster.isPrimary && workers > 1) {
  // The primary holds no client: it supervises, routes, and serves the summed metrics.
  const admin = settings.adminPort === undefined ? undefined : { host: settings.adminHost, port: settings.adminPort };
  runPrimary({ workers, log: (line) => log.info(line), via: redis === undefined ? "cluster" : "redis", admin });
} else await serve();

/** One server in this process: the whole server, or one worker of a cluster. */
async function serve(): Promise<void> {
  try {
    if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new Error("--tls-cert and --tls-key go together");
    const key = await loadJwtKey({
      secretFile: jwtSecretFile,
      publicKeyFile: jwtPublicKeyFile,
      envSecret: process.env.WS_CHANNELS_JWT_SECRET,
    });
    const spread = redis !== undefined ? { redis, prefix } : cluster.isWorker ? ({ cluster: true } as const) : undefined;
    // a worker's metrics go to the primary's admin listener, which sums them
    const { adminPort, ...rest } = settings;
    const server = await startServer({
      ...rest,
      ...(adminPort !== undefined && !cluster.isWorker && { adminPort }),
      ...(spread && { spread }),
      logger: log,
      ...(key && { authenticate: jwtAuthenticator(key) }),
      ...(tlsCert && tlsKey && { tls: { cert: await read("--tls-cert", tlsCert), key: await read("--tls-key", tlsKey) } }),
    } satisfies ServerOptions);
    // the primary sums its workers' metrics, and logs this worker as started
    if (cluster.isWorker) joinPrimary(server);
    if (key) log.info(`JWT connection tokens required (${key.algorithm})`);
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) return; // a second signal during shutdown changes nothing
      stopping = true;
      log.info(`${why}, closing connections`);
      server.close().then(
        () => {
          log.info("closed");
          process.exit(0);
        },
        (error: unknown) => {
          log.error(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
          process.exit(1);
        },
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    // a worker whose primary is gone has nobody to route for it and nobody to stop it
    if (cluster.isWorker) process.on("disconnect", () => stop("primary gone"));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (cluster.isWorker) report({ wsChannels: "failed", reason });
    log.fatal(`cannot start: ${reason}`);
    process.exit(1);
  }
}
