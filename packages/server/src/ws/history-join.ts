import WebSocket from "ws";
import type { HistoryPosition } from "ws-channels";
import type { ClientMeta } from "../client-meta.js";
import type { SayHistory } from "../history.js";
import type { Caller } from "./caller.js";

/**
 * A join with history on: asks the `authorize` hook first, then joins, takes the channel's
 * position (or what a returning client missed) and queues the reply in one synchronous step, so
 * that every say after that position reaches the client after the reply, and none before it is
 * missing from it. `forbidden` answers a refusal.
 */
export async function joinWithHistory(
  caller: Caller,
  history: SayHistory,
  channel: string,
  meta: ClientMeta,
  recover: HistoryPosition | undefined,
  forbidden: () => Promise<void>,
): Promise<void> {
  if (!(await history.mayJoin(channel, caller.id))) return forbidden();
  const { channels, ws } = caller;
  if (ws.readyState !== WebSocket.OPEN) return; // it closed while the hook was deciding
  // No await from here: the join, the snapshot and the reply's place among the channel's says.
  channels.join(channel, ws, meta);
  return caller.reply(history.joined(channel, recover));
}
