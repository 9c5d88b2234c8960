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
 * uWebSockets does for pub/sub. Corking holds references to the buffers, never copies, so large
 * messages are corked too. A stream someone else has corked is left corked to them.
 */
export function corkThisTick(stream: Writable): void {
  if (stream.writableCorked > 0) return;
  stream.cork();
  if (corked.push(stream) === 1) process.nextTick(flush);
}
