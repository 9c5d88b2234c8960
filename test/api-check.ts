import { request } from "node:http";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv, type ValidateFunction } from "ajv";
import { ApiClient } from "../packages/ws-channels/src/api.js";

/** An API key of the least length the server takes. */
export const KEY = "k".repeat(16) + "0123456789abcdef";

type Document = {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
};

/**
 * The OpenAPI document a server at `base` serves, checked by a well-kept validator, and a `fetch`
 * that checks every answer of `POST /api/METHOD` against its route's response schema for its
 * status (ajv): an answer that does not match throws, failing the call and so the test.
 */
export async function checkedApi(
  base: string,
  key = KEY,
  fetch: typeof globalThis.fetch = globalThis.fetch,
): Promise<{ api: ApiClient; fetch: typeof globalThis.fetch; document: Document }> {
  const response = await fetch(`${base}/api/openapi.json`, { headers: { "x-api-key": key } });
  const document = (await response.json()) as Document;
  const result = await new Validator().validate(document as never);
  if (!result.valid) throw new Error(`the OpenAPI document does not validate: ${JSON.stringify(result.errors)}`);
  const ajv = new Ajv({ strict: false });
  const schemas = new Map<string, ValidateFunction>();
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [status, answer] of Object.entries(operations.post?.responses ?? {})) {
      const schema = answer.content?.["application/json"]?.schema;
      if (schema !== undefined) schemas.set(`${path} ${status}`, ajv.compile(schema));
    }
  }
  // what a request to no route answers: the error every method may answer too
  const unrouted = schemas.get("/api/publish 401") as ValidateFunction;
  const checked: typeof globalThis.fetch = async (input, init) => {
    const answer = await fetch(input, init);
    const path = new URL(String(input)).pathname;
    const routed = init?.method === "POST" && document.paths[path] !== undefined;
    const validate = routed ? schemas.get(`${path} ${answer.status}`) : unrouted;
    const text = await answer.clone().text();
    if (validate === undefined) throw new Error(`${path} answered ${answer.status}, which its schema does not list: ${text}`);
    if (!validate(JSON.parse(text))) {
      throw new Error(`${path} ${answer.status} does not match its schema: ${ajv.errorsText(validate.errors)} in ${text}`);
    }
    return answer;
  };
  return { api: new ApiClient(base, { key, fetch: checked }), fetch: checked, document };
}

/**
 * A `fetch` (of what ApiClient uses: a URL, method, headers, a text body) on a new TCP connection
 * per request, so that the workers of a node:cluster take turns answering: the global fetch
 * keeps its connection alive, and one connection is one worker's.
 */
export const freshFetch = ((input: string | URL, init: RequestInit = {}) =>
  new Promise<Response>((resolve, reject) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const outgoing = request(String(input), { method: init.method ?? "GET", headers, agent: false }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => resolve(new Response(Buffer.concat(chunks), { status: incoming.statusCode ?? 0 })));
      incoming.on("error", reject);
    });
    outgoing.on("error", reject);
    outgoing.end(typeof init.body === "string" ? init.body : undefined);
  })) as typeof fetch;
