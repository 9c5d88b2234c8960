import type { IncomingMessage } from "node:http";
import { answered } from "./wait.js";

/** Who a connection is, as `authenticate` verified it. */
export interface Identity {
  /**
   * The connection's id for targeted messages: a user, who may hold several connections. A
   * non-empty, well-formed UTF-16 string (no lone surrogate); another id refuses the upgrade.
   */
  id: string;
  /**
   * The channels it may join; an entry ending in `*` is a prefix (`"room:*"`, or `"*"` for all).
   * Absent: every channel (the `authorize` hook, if any, still decides).
   */
  channels?: readonly string[];
  /** When its credential expires, in ms since the epoch: the connection is then closed 1008 `token expired`. */
  expiresAt?: number;
  /** What its presence entries carry as `info` (a JSON object; JWT: the `info` claim, at most 1 KiB). */
  info?: Readonly<Record<string, unknown>>;
}

/**
 * Decides at the HTTP upgrade who a client is, sync or async. An `Identity` accepts it;
 * undefined, false, a throw, a rejection or no answer within the hook timeout refuses it with
 * HTTP 401 (the reason, a thrown error's message, goes to the log only).
 *
 * When an open connection sends `{"refresh": TOKEN}`, it is asked again, with a stand-in for a
 * request (`refreshRequest`): `method` GET, `url` "/", `headers.authorization` `Bearer TOKEN` and
 * `socket.remoteAddress`, nothing else. A hook that reads the token from there (as
 * `jwtAuthenticator` does) refreshes tokens; a refusal is answered `{"error": "token invalid"}`.
 */
export type Authenticate = (request: IncomingMessage) => Identity | undefined | false | Promise<Identity | undefined | false>;

/**
 * Decides whether a connection may send a targeted message to an id, sync or async: `fromId` is
 * the sender's id (undefined when it has none), `toId` a target as a string. False, a throw or a
 * rejection refuses that target: the sender is told it is unknown, exactly as for an id connected
 * nowhere, so that the hook cannot be used to learn who is online.
 */
export type AuthorizeTarget = (fromId: string | undefined, toId: string) => boolean | Promise<boolean>;

/**
 * Asks `authenticate` about `request`, waiting at most `timeoutMs` ms, and checks the shape of its answer.
 * @returns the identity, or the reason for a refusal (for the log, never for the client).
 */
export async function identify(
  authenticate: Authenticate,
  request: IncomingMessage,
  timeoutMs: number,
): Promise<Identity | { refused: string }> {
  let identity: unknown;
  try {
    identity = await answered(() => authenticate(request), timeoutMs, "authenticate");
  } catch (error) {
    return { refused: error instanceof Error ? error.message : String(error) };
  }
  if (identity === undefined || identity === false) return { refused: "authenticate refused" };
  if (!isIdentity(identity)) return { refused: "authenticate answered something other than { id, channels?, expiresAt? }" };
  return identity;
}

/**
 * What `authenticate` is given for `{"refresh": TOKEN}` from the connection at `address`: not an
 * HTTP request, only the fields `Authenticate` documents for a refresh.
 */
export function refreshRequest(token: string, address: string): IncomingMessage {
  const request = { method: "GET", url: "/", headers: { authorization: `Bearer ${token}` }, socket: { remoteAddress: address } };
  return request as unknown as IncomingMessage;
}

/**
 * The connection token a client sent: `?token=` in the request target (what a browser can send)
 * or an `Authorization: Bearer` header.
 */
export function tokenOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined && /^bearer /i.test(header)) return header.slice(7).trim() || undefined;
  return query(request).get("token") ?? undefined;
}

/** The query of a request target, however malformed the target. */
export function query(request: IncomingMessage): URLSearchParams {
  const target = request.url ?? "";
  return new URLSearchParams(target.includes("?") ? target.slice(target.indexOf("?") + 1) : "");
}

/** Whether `channel` is in `allowed` (entries ending in `*` are prefixes); no list allows all. */
export function mayJoin(allowed: readonly string[] | undefined, channel: string): boolean {
  if (allowed === undefined) return true;
  return allowed.some((entry) => (entry.endsWith("*") ? channel.startsWith(entry.slice(0, -1)) : channel === entry));
}

function isIdentity(value: unknown): value is Identity {
  if (value === null || typeof value !== "object") return false;
  const { id, channels, expiresAt, info } = value as Record<string, unknown>;
  return (
    typeof id === "string" &&
    id !== "" &&
    id.isWellFormed() && // a lone surrogate would become U+FFFD, another id, on its way to Redis
    (channels === undefined || (Array.isArray(channels) && channels.every((entry) => typeof entry === "string"))) &&
    (expiresAt === undefined || (typeof expiresAt === "number" && !Number.isNaN(expiresAt))) &&
    (info === undefined || isJsonObject(info))
  );
}

/** Whether `value` is a plain object (not null, not an array), as JSON's objects are. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
