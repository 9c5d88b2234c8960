import type { Channels } from "ws-channels";
import type { HistoryStore } from "../adapters/history-store.js";
import type { ClientMeta } from "../client-meta.js";

/** The demo ticker's channel (`--demo`). */
export const TICKER_CHANNEL = "ticker";
/** How often the ticker says its next number, in ms: 5 says a second. */
export const TICKER_INTERVAL_MS = 200;

/**
 * `--demo`: says 1, 2, 3... into `ticker` five times a second, from `ticker`, as a client's says
 * are delivered (with history: kept, with offsets), so that a page that drops its connection and
 * comes back shows the numbers it missed as replayed, with no hole (without history, the hole).
 * @returns stops the ticker.
 */
export function startTicker(channels: Channels<ClientMeta>, history: HistoryStore | undefined): () => void {
  let count = 0;
  const timer = setInterval(() => {
    count++;
    const entry = `{"say":${count},"from":"${TICKER_CHANNEL}"}`;
    if (history !== undefined) return history.say(TICKER_CHANNEL, entry); // kept, numbered, delivered on every node
    channels.broadcast(TICKER_CHANNEL, `{"to":"${TICKER_CHANNEL}",${entry.slice(1)}`).catch(() => undefined); // rejected only once channels are closed
  }, TICKER_INTERVAL_MS);
  return () => clearInterval(timer);
}
