import WebSocket from "ws";

/** Connections pinged in one turn of the event loop before a sweep yields. */
const SLICE = 512;

/**
 * Finds dead peers, as socket.io and the `ws` FAQ do: every `intervalMs` it pings every
 * connection, and terminates (no close handshake) one that has sent nothing, no pong and no
 * message, for `intervalMs + timeoutMs`. A sweep walks the connections in slices of `SLICE` with
 * a turn of the event loop between them, so thousands of pings never go out in one burst; a dead
 * peer is terminated at most one interval after its deadline.
 */
export class Heartbeat {
  readonly #watched = new Map<WebSocket, { seen: number; onDead: () => void }>();
  readonly #silentMs: number;
  readonly #timer: NodeJS.Timeout;
  #sweep: Iterator<[WebSocket, { seen: number; onDead: () => void }]> | undefined;
  #pending: NodeJS.Immediate | undefined;

  /** Starts the sweeps (`intervalMs`, `timeoutMs` in ms). */
  constructor(intervalMs: number, timeoutMs: number) {
    this.#silentMs = intervalMs + timeoutMs;
    this.#timer = setInterval(this.#start, intervalMs).unref();
  }

  /** Watches a new connection until it closes; `onDead` is called before it is terminated. */
  watch(ws: WebSocket, onDead: () => void): void {
    const entry = { seen: performance.now(), onDead };
    const seen = (): void => {
      entry.seen = performance.now();
    };
    this.#watched.set(ws, entry);
    ws.on("pong", seen);
    ws.on("ping", seen);
    ws.on("message", seen);
    ws.once("close", () => this.#watched.delete(ws));
  }

  /** Stops sweeping. */
  stop(): void {
    clearInterval(this.#timer);
    if (this.#pending !== undefined) clearImmediate(this.#pending);
    this.#sweep = undefined;
  }

  readonly #start = (): void => {
    if (this.#sweep !== undefined) return; // the last sweep is still walking: it covers everyone
    this.#sweep = this.#watched.entries();
    this.#slice();
  };

  readonly #slice = (): void => {
    this.#pending = undefined;
    const sweep = this.#sweep;
    if (sweep === undefined) return;
    const deadline = performance.now() - this.#silentMs;
    for (let i = 0; i < SLICE; i++) {
      const next = sweep.next();
      if (next.done === true) {
        this.#sweep = undefined;
        return;
      }
      const [ws, { seen, onDead }] = next.value;
      if (seen <= deadline) {
        this.#watched.delete(ws);
        onDead();
        ws.terminate();
      } else if (ws.readyState === WebSocket.OPEN) {
        ws.ping();
      }
    }
    this.#pending = setImmediate(this.#slice);
  };
}
