import swagger from "@fastify/swagger";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from "fastify";
import type { Logger } from "pino";
import type { Bound } from "../address.js";
import type { ApiKey } from "./key.js";
import { ApiFailure, type ApiServices, METHODS } from "./methods.js";
import { type MethodName, methodSchemas } from "./schemas.js";

/** The largest body a request may have, in bytes; larger: 413. */
export const API_BODY_LIMIT = 1024 * 1024;

/** What the API listener is made with. */
export interface ApiSettings {
  readonly host: string;
  readonly port: number;
  readonly key: ApiKey;
  /** The WebSocket protocol's bounds, which the API's channel names and sends keep too. */
  readonly maxChannelLength: number;
  readonly maxTargets: number;
}

/** Told of every request once answered: its method (`unknown` for no route), status and time in seconds. */
export type ApiObserver = (method: string, status: number, seconds: number) => void;

/** The one body of every 401, whatever the reason: a missing key, a wrong one, a malformed header. */
const UNAUTHORIZED = { error: { code: "unauthorized", message: "a valid API key is required" } };

/**
 * The server API: a listener of its own (never the WebSocket port) answering `POST /api/METHOD`
 * with JSON, for an application's backend. Every request needs the key (also `GET
 * /api/openapi.json`, the OpenAPI 3.1 document made from the routes' schemas); the key is checked
 * before the body is read. Bodies are validated by each route's JSON schema (fastify, ajv).
 */
export class ApiServer {
  readonly #app: FastifyInstance;
  readonly #ready: Promise<void>;

  constructor(settings: ApiSettings, services: ApiServices, log: Logger, observe: ApiObserver) {
    const app = Fastify({
      logger: false,
      bodyLimit: API_BODY_LIMIT,
      // what is not valid is refused, never changed into something valid
      ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    });
    this.#app = app;
    // Any content type is read as JSON: `curl -d` sends a form's type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(new ApiFailure(400, "invalid_json", "the body is not JSON"), undefined);
      }
    });
    app.addHook("onRequest", async (request, reply) => {
      if (!settings.key.allows(request.headers)) return reply.code(401).send(UNAUTHORIZED);
    });
    app.addHook("onResponse", async (request, reply) => {
      const method = (request.routeOptions.config as { apiMethod?: string }).apiMethod ?? "unknown";
      const ms = reply.elapsedTime;
      observe(method, reply.statusCode, ms / 1000);
      log.debug({ method, status: reply.statusCode, ms: Math.round(ms * 10) / 10 }, "api request");
    });
    app.setErrorHandler((error: FastifyError | ApiFailure, request, reply) => {
      if (!(error instanceof ApiFailure) && (error.statusCode ?? 500) >= 500)
        log.error({ err: error, url: request.url }, "api method failed");
      return answerError(error, reply);
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({ error: { code: "not_found", message: `no API method ${request.method} ${request.url.split("?")[0]}` } }),
    );
    this.#ready = this.#routes(settings, services);
  }

  /** Starts listening (port 0 gives a free port). @returns the bound address. */
  async listen(host: string, port: number): Promise<Bound> {
    await this.#ready;
    await this.#app.listen({ host, port });
    const address = this.#app.server.address();
    if (address === null || typeof address === "string") throw new Error("the API listener has no TCP address");
    return { host: address.address, port: address.port };
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    await this.#ready.catch(() => undefined);
    await this.#app.close();
  }

  async #routes(settings: ApiSettings, services: ApiServices): Promise<void> {
    const app = this.#app;
    await app.register(swagger, {
      openapi: {
        openapi: "3.1.0",
        info: { title: "ws-channels server API", version: "0.3.0" },
        components: {
          securitySchemes: {
            apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
            authorization: { type: "apiKey", in: "header", name: "Authorization", description: "`apikey KEY`" },
          },
        },
      },
    });
    const schemas = methodSchemas(settings.maxChannelLength, settings.maxTargets);
    for (const name of Object.keys(schemas) as MethodName[]) {
      const handler = METHODS[name];
      app.post(`/api/${name}`, { schema: schemas[name], config: { apiMethod: name } }, (request) =>
        handler(services, request.body as Record<string, unknown>),
      );
    }
    app.get("/api/openapi.json", { schema: { hide: true }, config: { apiMethod: "openapi" } }, () => app.swagger());
    await app.ready();
  }
}

/** `{"error": {"code", "message"}}` with the status each kind of failure has. */
function answerError(error: FastifyError | ApiFailure, reply: FastifyReply): FastifyReply {
  if (error instanceof ApiFailure) return reply.code(error.status).send({ error: { code: error.code, message: error.message } });
  if (error.validation !== undefined) return reply.code(400).send({ error: { code: "invalid_body", message: error.message } });
  if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE")
    return reply.code(413).send({ error: { code: "too_large", message: `a body may have at most ${API_BODY_LIMIT} bytes` } });
  const status = error.statusCode ?? 500;
  if (status < 500) return reply.code(status).send({ error: { code: "bad_request", message: error.message } });
  return reply.code(500).send({ error: { code: "internal", message: "internal error" } });
}
