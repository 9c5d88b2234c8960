import type { Writable } from "node:stream";

/** How long one flush may take before the rest waits for the next turn, in ms. */
const FLUSH_MS = 2;

let corked: Writable[] = [];
let flushed = 0;

/**
 * Uncorks the streams corked since the last flush, each one `writev` of everything written to
 * it. Each uncork is a system call (several µs), so a fan-out to thousands of sockets flushes
 * for at most FLUSH_MS and leaves the rest to the next turn; those streams stay corked
 * meanwhile, so later writes queue behind, in order.
 */
function flush(): void {
  const deadline = performance.now() + FLUSH_MS;
  while (flushed < corked.length) {
    try {
      corked[flushed++]?.uncork();
    } catch {
      // a stream that cannot write reports it through its own error event; the others go on
    }
    if (flushed % 32 === 0 && flushed < corked.length && performance.now() > deadline) {
      setImmediate(flush);
      return;
    }
  }
  corked = [];
  flushed = 0;
}

/**
 * Corks `stream` until the next flush, at the end of this tick, so that every write to it in this
 * turn (broadcast frames, a reply, a targeted message, in the order they were made) leaves as one
 * `writev`, as uWebSockets does for pub/sub. Corking holds references to the buffers, never
 * copies, so large messages are corked too. A stream someone else has corked is left to them.
 */
export function corkUntilFlush(stream: Writable): void {
  if (stream.writableCorked > 0) return;
  stream.cork();
  if (corked.push(stream) === 1) process.nextTick(flush);
}
