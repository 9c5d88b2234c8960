#!/usr/bin/env node
import cluster from "node:cluster";
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { loadApiKey } from "./api/key.js";
import { parseFlags } from "./flags.js";
import { loadJwtKey } from "./jwt.js";
import { createLogger } from "./log.js";
import type { ServerOptions } from "./options.js";
import { report, runPrimary } from "./primary.js";
import { startServer } from "./server.js";
import { joinPrimary } from "./worker.js";

const {
  jwtSecretFile,
  jwtPublicKeyFile,
  tlsCert,
  tlsKey,
  logLevel,
  logFormat,
  workers: asked,
  workerBacklogBytes,
  redis,
  redisPrefix: prefix,
  apiKeyFile,
  ...flags
} = parseFlags();
const { jwtAudience, jwtIssuer, jwtMaxAge, jwtClockTolerance, jwtRequireChannels, ...settings } = flags;
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
  const { historySize: size, historyTtl, recoverMax = size } = settings;
  const history = size > 0 ? { size, ttlMs: historyTtl * 1000, recoverMax } : undefined;
  runPrimary({ workers, log, via: redis === undefined ? "cluster" : "redis", admin, history, backlogBytes: workerBacklogBytes });
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
    const claims = {
      ...(jwtAudience !== undefined && { audience: jwtAudience }),
      ...(jwtIssuer !== undefined && { issuer: jwtIssuer }),
      ...(jwtMaxAge !== undefined && { maxAge: jwtMaxAge }),
      clockTolerance: jwtClockTolerance,
      requireChannels: jwtRequireChannels,
    };
    if (!key && (jwtRequireChannels || [jwtAudience, jwtIssuer, jwtMaxAge].some((given) => given !== undefined)))
      throw new Error("--jwt-audience, --jwt-issuer, --jwt-max-age and --jwt-require-channels need a JWT key");
    const apiKey = await loadApiKey(apiKeyFile, process.env.WS_CHANNELS_API_KEY);
    if (settings.apiPort !== undefined && apiKey === undefined) throw new Error("--api-port needs --api-key-file or WS_CHANNELS_API_KEY");
    const spread = redis !== undefined ? { redis, prefix } : cluster.isWorker ? ({ cluster: true } as const) : undefined;
    // a worker's metrics go to the primary's admin listener, which sums them
    const { adminPort, demo, ...rest } = settings;
    const server = await startServer({
      ...rest,
      ...(adminPort !== undefined && !cluster.isWorker && { adminPort }),
      ...(spread && { spread }),
      // one ticker per server, not per worker: the first worker's says reach every worker
      demo: demo && (!cluster.isWorker || cluster.worker?.id === 1),
      logger: log,
      ...(key && { jwt: { key, ...claims } }),
      ...(apiKey !== undefined && { apiKey }),
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
