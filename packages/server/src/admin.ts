import { createServer, type Server, type ServerResponse } from "node:http";
import { type Bound, listen } from "./address.js";

/** Whether the server is ready for traffic, and what it waits for when it is not. */
export interface Readiness {
  ready: boolean;
  /** Each listener (and, in time, the broker): true once it is up. */
  [part: string]: boolean;
}

/**
 * The admin HTTP listener, for the operator and never the public: `GET /metrics` (Prometheus
 * text format), `GET /healthz` (200 while the process serves), `GET /readyz` (200 once every
 * listener is up, 503 before and during shutdown; a JSON body says which part is not).
 */
export class AdminServer {
  readonly #http: Server;

  /**
   * @param registry what `/metrics` serves: a prom-client `Registry`, or anything that renders
   *   the text format (the cluster primary's aggregation of its workers).
   */
  constructor(registry: { metrics(): Promise<string>; readonly contentType: string }, readiness: () => Readiness) {
    this.#http = createServer((request, response) => {
      const path = (request.url ?? "").split("?")[0];
      if (request.method !== "GET" && request.method !== "HEAD") return send(response, 405, "text/plain", "Method Not Allowed\n");
      if (path === "/healthz") return send(response, 200, "application/json", '{"status":"ok"}\n');
      if (path === "/readyz") {
        const state = readiness();
        return send(response, state.ready ? 200 : 503, "application/json", `${JSON.stringify(state)}\n`);
      }
      if (path !== "/metrics") return send(response, 404, "text/plain", "Not Found\n");
      registry.metrics().then(
        (text) => send(response, 200, registry.contentType, text),
        () => send(response, 500, "text/plain", "metrics failed\n"),
      );
    });
  }

  /** Starts listening on `host:port` (port 0 gives a free port). @returns the bound address. */
  listen(host: string, port: number): Promise<Bound> {
    return listen(this.#http, host, port);
  }

  /** Stops listening and closes every connection (scrapers keep theirs alive). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeAllConnections();
    return closed;
  }
}

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) }).end(body);
}
