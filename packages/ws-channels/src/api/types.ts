/** Where a channel's history stands, or where a reader stopped: an offset valid in its epoch. */
export interface ApiPosition {
  readonly offset: number;
  readonly epoch: string;
}

/** What `publish` answers: the say's position when the channel keeps history, else nothing. */
export interface Published {
  readonly offset?: number;
  readonly epoch?: string;
}

/** One connection in a channel, as presence lists it. */
export interface ApiPresenceEntry {
  readonly ref: string;
  /** Its id, or null for a connection without one. */
  readonly id: string | null;
  /** What its token's `info` claim carried, if anything. */
  readonly info?: Readonly<Record<string, unknown>>;
}

/** A say a channel keeps, as `history` lists it. */
export interface Publication {
  readonly say: unknown;
  /** Who said it; absent for what the server said (the API's publish). */
  readonly from?: string;
  readonly offset: number;
}

/** What `history` answers: the says read, oldest first, and where the channel stands. */
export interface HistoryPage extends ApiPosition {
  readonly publications: Publication[];
}

/** One page of `channels`. */
export interface ChannelsPage {
  readonly channels: { readonly name: string; readonly connections: number }[];
  /** Give it to the next call for the next page; absent on the last page. */
  readonly cursor?: string;
}

/** Options of `new ApiClient()`. */
export interface ApiClientOptions {
  /** The server's API key (`--api-key-file` or `WS_CHANNELS_API_KEY`), sent as `X-API-Key`. */
  readonly key: string;
  /** How long one call may take, in ms; then it rejects with an `ApiError` of status 0, code `timeout`. Default: 10000. */
  readonly timeoutMs?: number;
  /** The `fetch` to use. Default: the global one (Node >= 18, browsers). */
  readonly fetch?: typeof fetch;
}
