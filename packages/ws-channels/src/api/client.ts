import type { ApiClientOptions, ApiPosition, ApiPresenceEntry, ChannelsPage, HistoryPage, Published } from "./types.js";

/**
 * A refused or failed call: `status` is the HTTP status (0 when no answer came) and `code` the
 * server's `error.code` (`invalid_body`, `unauthorized`, `not_found`, `too_large`,
 * `history_off`, `unavailable`; `network` or `timeout` when no answer came).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * A client of the ws-channels server API (docs/server.md#server-api), for a backend: one method
 * per API method, each a `POST /api/METHOD` with the key, resolving with the result or
 * rejecting with an `ApiError`. It holds no connection of its own (each call is one `fetch`).
 *
 * @example
 * const api = new ApiClient("http://127.0.0.1:4600", { key: process.env.WS_CHANNELS_API_KEY });
 * await api.publish("lobby", { text: "hello from the backend" });
 */
export class ApiClient {
  readonly #base: string;
  readonly #key: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  /**
   * @param url where the server's API listens (`http://host:port`; a trailing `/` or `/api` is fine).
   * @throws {TypeError} for a `url` that is not an http(s) URL or a `key` that is not a non-empty string.
   */
  constructor(url: string, options: ApiClientOptions) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    if (parsed === undefined || !/^https?:$/.test(parsed.protocol)) throw new TypeError(`url must be an http(s) URL, got ${String(url)}`);
    if (typeof options?.key !== "string" || options.key === "") throw new TypeError("options.key must be the API key, a non-empty string");
    this.#base = parsed.href.replace(/\/(api\/?)?$/, "");
    this.#key = options.key;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#fetch = options.fetch ?? fetch;
  }

  /** Says `data` into `channel` as the server (no `from`), to its members on every node. */
  publish(channel: string, data: unknown): Promise<Published> {
    return this.#call("publish", { channel, data });
  }

  /** Says `data` into each of `channels`. @returns one result per channel, in order. */
  broadcast(channels: readonly string[], data: unknown): Promise<{ results: (Published & { channel: string })[] }> {
    return this.#call("broadcast", { channels, data });
  }

  /** Sends `{"from": null, "payload": payload}` to every connection of each id, on every node. @returns the ids connected nowhere. */
  send(targets: readonly string[], payload: unknown): Promise<{ unknown: string[] }> {
    return this.#call("send", { targets, payload });
  }

  /** Who is in `channel`, on every node; `partial` while the other nodes cannot be reached (this node's own members). */
  presence(channel: string): Promise<{ members: ApiPresenceEntry[]; partial?: true }> {
    return this.#call("presence", { channel });
  }

  /** How many connections, and distinct ids (users), are in `channel`; `partial` as in `presence`. */
  presenceStats(channel: string): Promise<{ connections: number; users: number; partial?: true }> {
    return this.#call("presence_stats", { channel });
  }

  /**
   * What `channel` keeps after `since` (from the oldest kept when `since` is of another epoch or
   * too old), oldest first, at most `limit`. Rejects with code `history_off` on a server without history.
   */
  history(channel: string, options: { since?: ApiPosition; limit?: number } = {}): Promise<HistoryPage> {
    return this.#call("history", { channel, ...options });
  }

  /** Closes every connection of `id`, on every node, with 4000 `disconnected`. @returns how many. */
  disconnect(id: string): Promise<{ closed: number }> {
    return this.#call("disconnect", { id });
  }

  /** One page of live channels (with at least one member on some node), in name order. */
  channels(options: { prefix?: string; cursor?: string; limit?: number } = {}): Promise<ChannelsPage> {
    return this.#call("channels", options);
  }

  async #call<T>(method: string, body: object): Promise<T> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.#base}/api/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": this.#key },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      const timeout = error instanceof Error && error.name === "TimeoutError";
      const message = timeout ? `no answer within ${this.#timeoutMs} ms` : String((error as Error)?.message ?? error);
      throw new ApiError(0, timeout ? "timeout" : "network", `${method}: ${message}`);
    }
    const text = await response.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, "invalid_response", `${method}: HTTP ${response.status}, not JSON`);
    }
    if (response.ok) return value as T;
    const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof error?.code === "string" ? error.code : "http_error";
    throw new ApiError(
      response.status,
      code,
      `${method}: ${typeof error?.message === "string" ? error.message : `HTTP ${response.status}`}`,
    );
  }
}
