/*
 * The server API's JSON schemas, one body and one result per method: fastify validates each body
 * with them (ajv) and serializes each result with them, and @fastify/swagger makes the OpenAPI
 * document from the same objects.
 */

/** The most channels one broadcast names, and the largest page of `channels`. */
export const MAX_BROADCAST_CHANNELS = 100;
export const MAX_PAGE = 1000;

/** No lone surrogate (ajv tests patterns with the `u` flag): UTF-8 cannot carry one, so another node would read another name. */
const WELL_FORMED = "^[^\\uD800-\\uDFFF]*$";

const ERROR = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" } },
    },
  },
} as const;

const position = (epochs: number) => ({
  type: "object",
  required: ["offset", "epoch"],
  additionalProperties: false,
  properties: { offset: { type: "integer", minimum: 0 }, epoch: { type: "string", maxLength: epochs } },
});

/** Present, and true, only while the other nodes cannot be reached: the answer holds this node's own entries. */
const partial = { type: "boolean", const: true } as const;

/** Kept says as `history` lists them. */
const publication = {
  type: "object",
  required: ["say", "offset"],
  properties: { say: {}, from: { type: "string" }, offset: { type: "integer" } },
} as const;

const object = (properties: Record<string, object>, required: string[] = Object.keys(properties)) => ({
  type: "object",
  required,
  additionalProperties: false,
  properties,
});

/** A method's schema: its body, its result, and the errors every method may answer. */
function method(summary: string, body: object, result: object) {
  return {
    summary,
    body,
    response: { 200: result, 400: ERROR, 401: ERROR, 413: ERROR, 503: ERROR },
    security: [{ apiKey: [] }, { authorization: [] }],
  };
}

/**
 * Every method's route schema, for channel names of at most `maxChannelLength` code points and
 * sends to at most `maxTargets` ids (the WebSocket protocol's own bounds).
 */
export function methodSchemas(maxChannelLength: number, maxTargets: number) {
  const channel = { type: "string", minLength: 1, maxLength: maxChannelLength, pattern: WELL_FORMED };
  const id = { type: "string", pattern: WELL_FORMED };
  const published = { type: "object", properties: { offset: { type: "integer" }, epoch: { type: "string" } } };
  const entry = {
    type: "object",
    required: ["ref", "id"],
    properties: { ref: { type: "string" }, id: { type: ["string", "null"] }, info: { type: "object", additionalProperties: true } },
  };
  return {
    publish: method("Says `data` into a channel, on every node", object({ channel, data: {} }), published),
    broadcast: method(
      "Says `data` into several channels",
      object({ channels: { type: "array", minItems: 1, maxItems: MAX_BROADCAST_CHANNELS, items: channel }, data: {} }),
      object({
        results: { type: "array", items: { ...published, required: ["channel"], properties: { ...published.properties, channel } } },
      }),
    ),
    send: method(
      "Sends `payload` to every connection of each id, on every node",
      object({ targets: { type: "array", minItems: 1, maxItems: maxTargets, items: id }, payload: {} }),
      object({ unknown: { type: "array", items: { type: "string" } } }),
    ),
    presence: method(
      "Who is in a channel, on every node (partial: the other nodes could not be reached, this node's own)",
      object({ channel }),
      object({ members: { type: "array", items: entry }, partial }, ["members"]),
    ),
    presence_stats: method(
      "How many connections and users are in a channel (partial: as in presence)",
      object({ channel }),
      object({ connections: { type: "integer" }, users: { type: "integer" }, partial }, ["connections", "users"]),
    ),
    history: method(
      "The says a channel keeps, after a position",
      object({ channel, since: position(64), limit: { type: "integer", minimum: 0 } }, ["channel"]),
      object({ publications: { type: "array", items: publication }, offset: { type: "integer" }, epoch: { type: "string" } }),
    ),
    disconnect: method(
      "Closes every connection of an id, on every node, with 4000 disconnected",
      object({ id }),
      object({ closed: { type: "integer" } }),
    ),
    channels: method(
      "Live channels on every node, a page at a time",
      object(
        {
          prefix: { type: "string", maxLength: maxChannelLength, pattern: WELL_FORMED },
          cursor: { type: "string", maxLength: 4 * maxChannelLength + 8 },
          limit: { type: "integer", minimum: 1, maximum: MAX_PAGE },
        },
        [],
      ),
      object(
        {
          channels: { type: "array", items: object({ name: { type: "string" }, connections: { type: "integer" } }) },
          cursor: { type: "string" },
        },
        ["channels"],
      ),
    ),
  };
}

/** The API's methods, as their routes name them (`POST /api/METHOD`). */
export type MethodName = keyof ReturnType<typeof methodSchemas>;

/** Every method, for the metrics' series that exist from the start. */
export const API_METHODS = [
  "publish",
  "broadcast",
  "send",
  "presence",
  "presence_stats",
  "history",
  "disconnect",
  "channels",
] as const satisfies readonly MethodName[];
