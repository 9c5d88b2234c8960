import type { IncomingMessage, ServerResponse } from "node:http";
import type { PageFile } from "./files.js";

/** Answers a plain HTTP request (not an upgrade) on the WebSocket port. */
export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * What every page response carries: the page may load its own scripts and styles and open a
 * WebSocket to its own origin, nothing else; no framing, no sniffing, no referrer.
 */
const HEADERS = {
  "Cache-Control": "no-cache",
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
} as const;

/** Without the page: every plain HTTP request is told to upgrade (RFC 6455 is all this port speaks). */
export const upgradeRequired: HttpHandler = (_, response) => {
  response.writeHead(426, { Connection: "close", "Content-Type": "text/plain" }).end("Upgrade Required\n");
};

/**
 * Serves the page's files (see `loadPage`): GET and HEAD of a known path answer 200 with its
 * bytes, of any other path 404; another method 405 with `Allow: GET, HEAD`. The query string is
 * the page's own (`?name=`, `?channel=`) and does not choose the file.
 */
export function servePage(files: ReadonlyMap<string, PageFile>): HttpHandler {
  return (request, response) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain" }).end("Method Not Allowed\n");
      return;
    }
    const path = (request.url ?? "/").split("?", 1)[0] as string;
    const file = files.get(path);
    if (file === undefined) {
      response.writeHead(404, { "Content-Type": "text/plain", ...HEADERS }).end("Not Found\n");
      return;
    }
    response.writeHead(200, { "Content-Type": file.type, "Content-Length": file.body.length, ...HEADERS });
    response.end(request.method === "HEAD" ? undefined : file.body);
  };
}
