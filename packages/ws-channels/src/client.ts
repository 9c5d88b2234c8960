/**
 * `ws-channels/client`: a client of the ws-channels server for browsers and Node, with no
 * dependencies (docs/client.md).
 */
export { Client } from "./client/client.js";
export type { Room } from "./client/room.js";
export type {
  ClientEvents,
  ClientOptions,
  ClientState,
  JoinedEvent,
  JoinOptions,
  PresenceChange,
  PresenceEntry,
  RoomClosedEvent,
  RoomEvents,
  RoomMessage,
  StateEvent,
  TargetedMessage,
  TokenSource,
  WebSocketConstructor,
} from "./client/types.js";
