import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { type Authenticate, type Identity, identify } from "../auth.js";

/** Who may open a WebSocket: which browser origins, and how a client proves who it is. */
export interface Gate {
  /** Origins a browser's upgrade may come from, or `"*"` for any. */
  allowedOrigins: readonly string[] | "*";
  /** Verifies the client at the upgrade; absent: anyone, known by its `?id=` if it gives one. */
  authenticate?: Authenticate | undefined;
  /** How long `authenticate` may take to answer, in ms; past it: 401. */
  hookTimeout: number;
  /** Whether the page is served here: an upgrade from its own origin is then allowed. */
  page: boolean;
}

/** What the gate decided: let in (with its identity when authenticated), or answer with a status. */
export type Verdict =
  | { admitted: true; identity: Identity | undefined }
  | { admitted: false; status: 401 | 403; reason: "token" | "origin"; detail: string };

/**
 * Checks the `Origin` of a browser's upgrade (a request without one is not a browser's, and is
 * allowed; with the page on, so is the page's own origin), then asks `authenticate`, if any.
 */
export async function admit(request: IncomingMessage, { allowedOrigins, authenticate, hookTimeout, page }: Gate): Promise<Verdict> {
  const origin = request.headers.origin;
  const allowed = (seen: string): boolean =>
    allowedOrigins === "*" || allowedOrigins.includes(seen.toLowerCase()) || (page && seen.toLowerCase() === ownOrigin(request));
  if (origin !== undefined && !allowed(origin)) {
    return { admitted: false, status: 403, reason: "origin", detail: `origin ${origin} not allowed` };
  }
  if (authenticate === undefined) return { admitted: true, identity: undefined };
  const identity = await identify(authenticate, request, hookTimeout);
  if ("refused" in identity) return { admitted: false, status: 401, reason: "token", detail: identity.refused };
  return { admitted: true, identity };
}

/**
 * The origin a page served by this listener has, as browsers write it: the scheme of this
 * connection and the `Host` the request was sent to (undefined without a valid one).
 */
function ownOrigin(request: IncomingMessage): string | undefined {
  const { host } = request.headers;
  const scheme = (request.socket as TLSSocket).encrypted === true ? "https" : "http";
  if (host === undefined || !URL.canParse(`${scheme}://${host}`)) return undefined;
  return new URL(`${scheme}://${host}`).origin;
}

/**
 * The origins of a `--allowed-origins` list (comma-separated `scheme://host[:port]`), or `*`
 * alone for every origin. @throws {TypeError} naming an entry that is not an origin.
 */
export function parseOrigins(list: string): readonly string[] | "*" {
  const entries = list
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  return entries.length === 1 && entries[0] === "*" ? "*" : origins(entries);
}

/**
 * Origins as browsers send them in `Origin` (lower case, no default port).
 * @throws {TypeError} for an empty list, or naming an entry that is not an origin.
 */
export function origins(entries: readonly string[]): readonly string[] {
  if (entries.length === 0) throw new TypeError("expected a list of origins, or *");
  return entries.map((entry) => {
    const url = URL.canParse(entry) ? new URL(entry) : undefined;
    if (url === undefined || url.origin === "null" || url.pathname !== "/" || url.search !== "" || url.username !== "") {
      throw new TypeError(`${JSON.stringify(entry)} is not an origin (scheme://host[:port])`);
    }
    return url.origin;
  });
}

/**
 * Refuses an upgrade with `status` and the same short body whatever the reason, so that a client
 * learns nothing beyond the status.
 */
export function refuse(socket: Duplex, status: 401 | 403): void {
  const body = status === 401 ? "Unauthorized\n" : "Forbidden\n";
  socket.once("finish", () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${body.trim()}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
