/*
 * The WebSocket clients of `npm run bench:platform`: many `ws` connections from this process,
 * each handing every JSON frame it receives to its `onFrame`.
 */
import { WebSocket } from "ws";

/** A frame the server sent, parsed. */
export type Frame = Record<string, unknown>;

/** One connection to the server. */
export class Client {
  /** Called with each frame received; undefined: frames are not even parsed (a member only counted elsewhere). */
  onFrame: ((frame: Frame) => void) | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => this.onFrame?.(JSON.parse(data.toString()) as Frame));
  }

  /** Opens a connection to `url` (rejects on error or after 20,000 ms). */
  static open(url: string): Promise<Client> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to ${url} in 20 s`)), 20_000);
      ws.once("open", () => {
        clearTimeout(timer);
        resolve(new Client(ws));
      });
      ws.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Closes the connection; resolves once it is closed. */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve());
      this.ws.terminate();
    });
  }
}

/** Opens `count` connections to `url`, at most 200 opening at a time. */
export async function openMany(url: string, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let first = 0; first < count; first += 200) {
    const batch = Math.min(200, count - first);
    clients.push(...(await Promise.all(Array.from({ length: batch }, () => Client.open(url)))));
  }
  return clients;
}

/** Closes every client. */
export async function closeAll(clients: readonly Client[]): Promise<void> {
  await Promise.all(clients.map((client) => client.close()));
}
