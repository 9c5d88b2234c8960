import { createServer, type Server, type Socket } from "node:net";
import type { Channels } from "../channels.js";
import { type Bound, listen } from "./address.js";
import type { ClientMeta } from "./client-meta.js";

/**
 * The channel TCP clients share. WebSocket clients can only name string channels, so a number
 * keeps the two apart while both use one `Channels`.
 */
export const TCP_CHANNEL = 0;

/**
 * The plain TCP broadcast port: every chunk a client sends is written, byte for byte, to every
 * other connected client and not back to the sender.
 */
export class TcpBroadcastServer {
  readonly #channels: Channels<ClientMeta>;
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;
  readonly #keepAliveMs: number;

  /** @param keepAliveMs the delay before TCP keep-alive probes an idle connection, in ms. */
  constructor(channels: Channels<ClientMeta>, keepAliveMs: number) {
    this.#channels = channels;
    this.#keepAliveMs = keepAliveMs;
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
    this.#sockets.add(socket);
    // A peer gone without a FIN is found by the kernel's probes, as the heartbeat finds WebSocket ones.
    socket.setKeepAlive(true, this.#keepAliveMs);
    socket.on("error", () => undefined); // a reset connection just closes; the others carry on
    socket.once("close", () => this.#sockets.delete(socket));
    this.#channels.join(TCP_CHANNEL, socket);
    socket.on("data", (chunk: Buffer) => {
      this.#channels.broadcast(TCP_CHANNEL, chunk, { except: socket }).catch(() => undefined);
    });
  }
}
