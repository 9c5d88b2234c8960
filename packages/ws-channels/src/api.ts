/**
 * `ws-channels/api`: a client of the ws-channels server API for backends, on `fetch`, with no
 * dependencies (docs/server.md#server-api).
 */
export { ApiClient, ApiError } from "./api/client.js";
export type {
  ApiClientOptions,
  ApiPosition,
  ApiPresenceEntry,
  ChannelsPage,
  HistoryPage,
  Publication,
  Published,
} from "./api/types.js";
