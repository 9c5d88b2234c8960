/** A client's message, once checked against the protocol (the table in the README's "WebSocket protocol"). */
export type Command =
  | { readonly kind: "join"; readonly channel: string; readonly presence?: "full" | "count" }
  | { readonly kind: "presence"; readonly channel: string }
  | { readonly kind: "leave"; readonly channel: string }
  | { readonly kind: "say"; readonly channel: string; readonly say: unknown }
  | { readonly kind: "targets"; readonly targets: readonly (string | number)[]; readonly payload: unknown };

/**
 * Reads one text frame. Returns undefined for anything that is not exactly one of the shapes:
 * not JSON, not an object, extra or missing keys, a channel name that is not a non-empty string
 * of at most `maxChannelLength` characters (Unicode code points), targets that are not strings or
 * finite numbers. A channel name or target string must be well-formed UTF-16 (no lone surrogate,
 * which JSON's `\uD800` escape can carry): UTF-8 has no encoding for one, so on its way to Redis
 * or another node it would become U+FFFD and name another channel or id.
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
  const keys = Object.keys(fields);
  const isChannel = (name: unknown): name is string => typeof name === "string" && validName(name, maxChannelLength);

  if (keys.length === 1 && keys[0] === "join" && isChannel(fields.join)) return { kind: "join", channel: fields.join };
  if (keys.length === 2 && isChannel(fields.join) && (fields.presence === true || fields.presence === "count")) {
    return { kind: "join", channel: fields.join, presence: fields.presence === true ? "full" : "count" };
  }
  if (keys.length === 1 && keys[0] === "presence" && isChannel(fields.presence)) return { kind: "presence", channel: fields.presence };
  if (keys.length === 1 && keys[0] === "leave" && isChannel(fields.leave)) return { kind: "leave", channel: fields.leave };
  if (keys.length === 2 && Object.hasOwn(fields, "say") && isChannel(fields.to)) {
    return { kind: "say", channel: fields.to, say: fields.say };
  }
  if (keys.length === 2 && Object.hasOwn(fields, "payload") && Array.isArray(fields.targets) && fields.targets.every(isTarget)) {
    return { kind: "targets", targets: fields.targets, payload: fields.payload };
  }
  return undefined;
}

function validName(name: string, max: number): boolean {
  if (name.length === 0 || !name.isWellFormed()) return false;
  // A string of n UTF-16 units holds at most n code points: count them only when it can matter.
  if (name.length <= max) return true;
  let codePoints = 0;
  for (const _ of name) if (++codePoints > max) return false;
  return true;
}

function isTarget(id: unknown): id is string | number {
  return typeof id === "string" ? id.isWellFormed() : typeof id === "number" && Number.isFinite(id);
}
