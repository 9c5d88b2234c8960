import WebSocket from "ws";
import type { HistoryPosition } from "ws-channels";
import type { HistoryStore } from "../adapters/history-store.js";
import type { ClientMeta } from "../client-meta.js";
import type { Caller, JoinHistory } from "./caller.js";
import { type PresenceMode, snapshotFrame } from "./presence.js";

/**
 * The `JoinHistory` of a server whose adapter keeps says in `store`.
 * @param authorize the server's `authorize` hook, bounded by its timeout; undefined: any join.
 */
export function joinHistory(
  store: HistoryStore,
  authorize: ((channel: string, id: string | undefined) => Promise<boolean>) | undefined,
): JoinHistory {
  return {
    store,
    mayJoin: (channel, id) =>
      authorize === undefined
        ? Promise.resolve(true)
        : authorize(channel, id).then(
            (allowed) => allowed === true,
            () => false,
          ),
  };
}

/**
 * A join with history on: asks the `authorize` hook first, then has the store take the channel's
 * position (or what a returning client missed) and, in the same synchronous step, joins and
 * queues the reply, so that every say after that position reaches the client after the reply,
 * and none before it is missing from it. With `presence`, the joined reply also carries the
 * connection's `ref`, and the presence snapshot follows as `{"presence": CH, "members"}` (or
 * `"count"`), then its diffs. `forbidden` answers a refusal.
 */
export async function joinWithHistory(
  caller: Caller,
  history: JoinHistory,
  channel: string,
  meta: ClientMeta,
  recover: HistoryPosition | undefined,
  presence: PresenceMode | undefined,
  forbidden: () => Promise<void>,
): Promise<void> {
  if (!(await history.mayJoin(channel, caller.id))) return forbidden();
  const { channels, ws } = caller;
  if (ws.readyState !== WebSocket.OPEN) return; // it closed while the hook was deciding
  await history.store.join(channel, recover, (reply) => {
    if (ws.readyState !== WebSocket.OPEN) return Promise.resolve(); // it closed while the store answered
    channels.join(channel, ws, meta);
    return caller.reply(presence === undefined ? reply : { ...reply, ref: meta?.ref });
  });
  // Presence comes after the position, as a snapshot frame of its own: the says after the
  // position and the presence frames after the snapshot each keep their order.
  if (presence !== undefined && channels.member(channel, ws)) {
    await caller.presence.listen(channel, ws, presence, (snapshot) => snapshotFrame(channel, snapshot));
  }
}
