import type { Channels } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";
import type { HistorySettings } from "../history.js";
import type { Adapter, AdapterStats } from "./adapter.js";
import { type HistoryStore, LocalHistory } from "./history-store.js";
import { localPresence, type PresenceParts, type PresenceStore } from "./presence.js";

/** A process alone: nobody else can hold an id, so every claim is granted, nothing is elsewhere, and there is no other node to send to. */
export class Alone implements Adapter {
  readonly node = "alone";
  readonly broker = undefined;

  claim(): Promise<boolean> {
    return Promise.resolve(true);
  }

  release(): void {}

  locate(): Promise<Map<string, string[]>> {
    return Promise.resolve(new Map());
  }

  onLost(): void {}

  /** Never called: `locate` finds no other node. */
  sendToNode(): void {}

  onNodeMessage(): void {}

  /** No other node to ask. */
  ask(): Promise<string[]> {
    return Promise.resolve([]);
  }

  onQuestion(): void {}

  ready(): Promise<boolean> {
    return Promise.resolve(true);
  }

  stats(): AdapterStats {
    return { unsent: 0 };
  }

  history(settings: HistorySettings, channels: Channels<ClientMeta>): HistoryStore {
    return new LocalHistory(settings, channels);
  }

  presence<E>(parts: PresenceParts<E>): PresenceStore<E> {
    return localPresence(parts);
  }

  /** Never emits: there is nothing to reach. */
  on(): this {
    return this;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
