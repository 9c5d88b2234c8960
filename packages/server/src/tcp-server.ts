import { createServer, type Server, type Socket } from "node:net";
import type { Channels } from "ws-channels";
import { type Bound, listen } from "./address.js";
import { Backlog, type BacklogLimits, Valve } from "./backlog.js";
import type { ClientMeta } from "./client-meta.js";
import type { PauseReason } from "./metrics.js";
import type { Slots } from "./slots.js";
import type { Refused } from "./ws/close-codes.js";
import { TokenBucket } from "./ws/rate.js";

/**
 * The channel TCP clients share. WebSocket clients can only name string channels, so a number
 * keeps the two apart while both use one `Channels`.
 */
export const TCP_CHANNEL = 0;

/** What one TCP connection may do, as `Settings.tcp` has it. */
export interface TcpLimits extends BacklogLimits {
  /** The delay before TCP keep-alive probes an idle connection, in ms. */
  readonly keepAliveMs: number;
  /** Chunks (each one broadcast) one connection may send per second, and in one burst. */
  readonly maxMessagesPerSecond: number;
}

/** What the TCP port tells the server, to count and log. */
export interface TcpEvents {
  readonly refused: Refused;
  /** A connection stopped being read. */
  paused(reason: PauseReason): void;
  /** A connection holds `bytes` read and not yet broadcast. */
  held(bytes: number): void;
}

/**
 * The plain TCP broadcast port: every chunk a client sends is written, byte for byte, to every
 * other connected client and not back to the sender. Each connection takes one of the node's
 * slots (refused: destroyed); one past its rate, or whose chunks wait to be broadcast past the
 * backlog limits, stops being read until it may go on (TCP holds the rest of its bytes meanwhile,
 * nothing is lost), and one whose backlog stays full past `pendingTimeout` is destroyed.
 */
export class TcpBroadcastServer {
  readonly #channels: Channels<ClientMeta>;
  readonly #limits: TcpLimits;
  readonly #slots: Slots;
  readonly #events: TcpEvents;
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;

  constructor(channels: Channels<ClientMeta>, limits: TcpLimits, slots: Slots, events: TcpEvents) {
    this.#channels = channels;
    this.#limits = limits;
    this.#slots = slots;
    this.#events = events;
    this.#server = createServer((socket) => this.#connect(socket));
  }

  /** Open connections now. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Starts listening on `host:port` (port 0 gives a free port). @returns the bound address. */
  listen(host: string, port: number): Promise<Bound> {
    return listen(this.#server, host, port);
  }

  /** Stops accepting, ends every connection, and destroys those still open after `graceMs` ms. */
  async close(graceMs: number): Promise<void> {
    const stopped = new Promise((resolve) => this.#server.close(resolve));
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    for (const socket of this.#sockets) socket.end();
    await stopped;
    clearTimeout(timer);
  }

  #connect(socket: Socket): void {
    const address = socket.remoteAddress ?? "";
    socket.on("error", () => undefined); // a reset connection just closes; the others carry on
    const slot = this.#slots.take(address);
    if (typeof slot === "string") {
      this.#events.refused("too_many_connections", address, slot);
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    // A peer gone without a FIN is found by the kernel's probes, as the heartbeat finds WebSocket ones.
    socket.setKeepAlive(true, this.#limits.keepAliveMs);
    const valve = new Valve(socket);
    const backlog = new Backlog(this.#limits, valve, {
      paused: () => this.#events.paused("backlog"),
      held: this.#events.held,
      stuck: () => {
        this.#events.refused("too_many_pending", address);
        socket.destroy();
      },
    });
    const rate = new TokenBucket(this.#limits.maxMessagesPerSecond);
    let refill: NodeJS.Timeout | undefined;
    socket.once("close", () => {
      this.#sockets.delete(socket);
      slot();
      backlog.stop();
      clearTimeout(refill);
    });
    this.#channels.join(TCP_CHANNEL, socket);
    socket.on("data", (chunk: Buffer) => {
      backlog.add(chunk.length);
      const settled = (): void => backlog.remove(chunk.length);
      this.#channels.broadcast(TCP_CHANNEL, chunk, { except: socket }).then(settled, settled);
      if (rate.take() || refill !== undefined) return;
      // this chunk is already read: it goes out, and reading waits until the next token
      valve.shut("rate");
      this.#events.paused("rate");
      refill = setTimeout(() => {
        refill = undefined;
        valve.open("rate");
      }, 1000 / this.#limits.maxMessagesPerSecond);
    });
  }
}
