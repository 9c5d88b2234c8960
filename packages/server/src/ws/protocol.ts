/** Where a client stopped reading a channel with history: the offset of its last say, in its epoch. */
export type Position = { readonly offset: number; readonly epoch: string };

/** The longest epoch a client may send back (the server's are about 10 characters). */
const MAX_EPOCH_LENGTH = 64;

/** A client's tag for a message, echoed as `req` in its reply or error: a string, or a finite number. */
export type Req = string | number;

/** The longest `req`, in characters (code points; a number: its JSON text). */
export const MAX_REQ_LENGTH = 64;

/** A client's message, once checked against the protocol (the table in docs/protocol.md), with its `req` if it had one. */
export type Command = (
  | { readonly kind: "join"; readonly channel: string; readonly recover?: Position; readonly presence?: "full" | "count" }
  | { readonly kind: "presence"; readonly channel: string }
  | { readonly kind: "leave"; readonly channel: string }
  | { readonly kind: "say"; readonly channel: string; readonly say: unknown }
  | { readonly kind: "targets"; readonly targets: readonly (string | number)[]; readonly payload: unknown }
  | { readonly kind: "refresh"; readonly token: string }
  | { readonly kind: "ping"; readonly ping: Req }
) & { readonly req?: Req };

/**
 * Reads one text frame. Returns undefined for anything that is not exactly one of the shapes in the table,
 * each with an optional `req`: not JSON, not an object, extra or missing keys, a `req` that is not
 * a string or finite number of at most `MAX_REQ_LENGTH` characters (a `ping`'s N alike), a `refresh` that is not a
 * string, a channel name that is not a non-empty string of at most `maxChannelLength` characters
 * (Unicode code points), targets that are not strings or finite numbers. A channel name or target string must be well-formed UTF-16 (no lone surrogate,
 * which JSON's `\uD800` escape can carry): UTF-8 has no encoding for one, so on its way to Redis
 * or another node it would become U+FFFD and name another channel or id. A join's `recover` is
 * exactly `{offset, epoch}`: an integer offset >= 0 and an epoch of at most 64 characters.
 */
export function parseCommand(text: string, maxChannelLength: number): Command | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) return undefined;
  const fields = message as Record<string, unknown>;
  if (!Object.hasOwn(fields, "req")) return shape(fields, Object.keys(fields), maxChannelLength);
  const { req } = fields;
  if (!isReq(req)) return undefined;
  const command = shape(
    fields,
    Object.keys(fields).filter((key) => key !== "req"),
    maxChannelLength,
  );
  return command && { ...command, req };
}

/** The command `fields` holds, judged by its `keys` (without `req`). */
function shape(fields: Record<string, unknown>, keys: string[], maxChannelLength: number): Command | undefined {
  const isChannel = (name: unknown): name is string => typeof name === "string" && validName(name, maxChannelLength);

  if (isChannel(fields.join) && keys.length <= 3 && keys.every((key) => JOIN_KEYS.has(key))) return join(fields.join, fields);
  if (keys.length === 1 && keys[0] === "presence" && isChannel(fields.presence)) return { kind: "presence", channel: fields.presence };
  if (keys.length === 1 && keys[0] === "leave" && isChannel(fields.leave)) return { kind: "leave", channel: fields.leave };
  if (keys.length === 2 && Object.hasOwn(fields, "say") && isChannel(fields.to)) {
    return { kind: "say", channel: fields.to, say: fields.say };
  }
  if (keys.length === 2 && Object.hasOwn(fields, "payload") && Array.isArray(fields.targets) && fields.targets.every(isTarget)) {
    return { kind: "targets", targets: fields.targets, payload: fields.payload };
  }
  if (keys.length === 1 && keys[0] === "refresh" && typeof fields.refresh === "string") return { kind: "refresh", token: fields.refresh };
  // a ping's N is checked as a req is: the pong echoes it, so it is bounded alike
  if (keys.length === 1 && keys[0] === "ping" && isReq(fields.ping)) return { kind: "ping", ping: fields.ping };
  return undefined;
}

/** The keys a join may have: the channel, and a position to recover from and a presence mode, each optional. */
const JOIN_KEYS = new Set(["join", "recover", "presence"]);

/** A join's command, or undefined for a `recover` or `presence` of another shape. */
function join(channel: string, fields: Record<string, unknown>): Command | undefined {
  const { recover, presence } = fields;
  if (recover !== undefined && !isPosition(recover)) return undefined;
  if (presence !== undefined && presence !== true && presence !== "count") return undefined;
  return {
    kind: "join",
    channel,
    ...(recover !== undefined && { recover }),
    ...(presence !== undefined && { presence: presence === true ? "full" : "count" }),
  };
}

function validName(name: string, max: number): boolean {
  return name.length > 0 && name.isWellFormed() && fits(name, max);
}

function isReq(req: unknown): req is Req {
  // a finite number's JSON text is at most 24 characters; 1e400 parses as Infinity, which would echo as null
  return typeof req === "string" ? fits(req, MAX_REQ_LENGTH) : typeof req === "number" && Number.isFinite(req);
}

/** Whether `text` holds at most `max` code points. */
function fits(text: string, max: number): boolean {
  // A string of n UTF-16 units holds at most n code points: count them only when it can matter.
  if (text.length <= max) return true;
  let codePoints = 0;
  for (const _ of text) if (++codePoints > max) return false;
  return true;
}

function isTarget(id: unknown): id is string | number {
  return typeof id === "string" ? id.isWellFormed() : typeof id === "number" && Number.isFinite(id);
}

function isPosition(value: unknown): value is Position {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const { offset, epoch, ...rest } = value as Record<string, unknown>;
  return (
    Object.keys(rest).length === 0 &&
    Number.isSafeInteger(offset) &&
    (offset as number) >= 0 &&
    typeof epoch === "string" &&
    epoch.length <= MAX_EPOCH_LENGTH
  );
}
