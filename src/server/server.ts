import { Channels } from "../channels.js";
import type { SlowConsumerPolicy } from "../options.js";
import type { Bound } from "./address.js";
import type { ClientMeta } from "./client-meta.js";
import { TcpBroadcastServer } from "./tcp-server.js";
import { WsProtocolServer } from "./ws-server.js";

export type { ClientMeta } from "./client-meta.js";

/** Options of `startServer`; every one has the default the CLI shows in `--help`. */
export interface ServerOptions {
  /** Address both listeners bind to. Default: 127.0.0.1. */
  host?: string;
  /** WebSocket port; 0 picks a free one. Default: 4545. */
  port?: number;
  /** TCP broadcast port; 0 picks a free one. Default: 1234. */
  tcpPort?: number;
  /** Largest message a WebSocket client may send, in bytes. Default: 65536 (64 KiB). */
  maxFrameSize?: number;
  /** Longest channel name, in characters. Default: 128. */
  maxChannelLength?: number;
  /** How long shutdown waits for connections to close before cutting them, in ms. Default: 2000. */
  graceMs?: number;
  /** Unsent bytes over which a client is a slow consumer. Default: 1048576 (1 MiB). */
  highWaterMark?: number;
  /** What happens to a slow consumer: "skip" the message, or "close" it with 1013. Default: "skip". */
  slowConsumer?: SlowConsumerPolicy;
  /** Channels one WebSocket connection may be in. Default: 100. */
  maxChannelsPerConnection?: number;
  /** Open WebSocket connections from one IP address. Default: 1000. */
  maxConnectionsPerIp?: number;
  /** Messages one WebSocket connection may send per second, and in one burst. Default: 100. */
  maxMessagesPerSecond?: number;
  /**
   * Decides whether a WebSocket client may join a channel: `(channel, id)` with the connection's
   * `?id=` (or undefined), sync or async; false, a throw or a rejection refuses with
   * `{"error": "forbidden", "join": CH}`. Default: everyone may join. No CLI flag: it is code.
   */
  authorize?: (channel: string, id: string | undefined) => boolean | Promise<boolean>;
}

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 4545,
  tcpPort: 1234,
  maxFrameSize: 64 * 1024,
  maxChannelLength: 128,
  graceMs: 2000,
  highWaterMark: 1024 * 1024,
  slowConsumer: "skip",
  maxChannelsPerConnection: 100,
  maxConnectionsPerIp: 1000,
  maxMessagesPerSecond: 100,
} as const;

/** A started server: where it listens, and how to stop it. */
export interface RunningServer {
  readonly channels: Channels<ClientMeta>;
  readonly ws: Bound;
  readonly tcp: Bound;
  /** Open WebSocket connections, ids in use, and distinct client addresses, now. */
  connections(): { connections: number; ids: number; addresses: number };
  /** Stops both listeners, closes every connection (WebSocket close 1001), finishes broadcasts. */
  close(): Promise<void>;
}

/**
 * Starts the WebSocket server and the TCP broadcast server, sharing one `Channels`.
 * @throws rejects with the listen error (EADDRINUSE, say), after closing whatever had started.
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const settings = { ...DEFAULTS, ...options };
  const { authorize } = options;
  const channels = new Channels<ClientMeta>({
    highWaterMark: settings.highWaterMark,
    slowConsumer: settings.slowConsumer,
    ...(authorize && { authorize: (channel, _member, meta) => authorize(String(channel), meta?.id) }),
  });
  const wsServer = new WsProtocolServer(channels, settings);
  const tcpServer = new TcpBroadcastServer(channels);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await channels.close();
      await Promise.all([wsServer.close(settings.graceMs), tcpServer.close(settings.graceMs)]);
    })());
  try {
    const [ws, tcp] = await Promise.all([wsServer.listen(), tcpServer.listen(settings.host, settings.tcpPort)]);
    return { channels, ws, tcp, connections: () => wsServer.stats(), close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
