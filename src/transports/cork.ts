import type { Writable } from "node:stream";

let corked: Writable[] = [];

function flush(): void {
  const streams = corked;
  corked = [];
  for (const stream of streams) stream.uncork();
}

/**
 * Corks `stream` until the end of this tick, so that every write to it in this turn (broadcast
 * frames, a reply, a targeted message, in the order they were made) leaves as one `writev`, as
 * uWebSockets does for pub/sub. A stream someone else has corked is left to them. Corking holds
 * references to the buffers, never copies, so large messages are corked too.
 *
 * Backpressure is judged once per turn, before the first write corks the stream: the bytes
 * corked during the turn are this turn's own messages, not a backlog the peer failed to read.
 */
export function corkThisTick(stream: Writable): void {
  if (stream.writableCorked > 0) return;
  stream.cork();
  if (corked.push(stream) === 1) process.nextTick(flush);
}
