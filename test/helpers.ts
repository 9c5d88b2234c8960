import { once } from "node:events";
import { connect, type Socket } from "node:net";
import type { Registry } from "prom-client";
import { afterEach } from "vitest";
import WebSocket, { type ClientOptions, type ServerOptions, WebSocketServer } from "ws";
import { type ServerOptions as ChannelsServerOptions, type RunningServer, startServer } from "../packages/server/src/server.js";

/** How long any single wait in a test may take before it fails, in ms. */
export const WAIT_MS = 3000;

/** Rejects after `ms` with `what` in the message, unless `promise` settles first. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A FIFO of values that arrive over time; `next()` waits for the next one. */
class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];
  readonly received: T[] = [];

  push(item: T): void {
    this.received.push(item);
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  next(what: string): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return within(new Promise<T>((resolve) => this.#waiters.push(resolve)), what);
  }
}

/** A real `ws` client that records every message and how it closed. */
export class WsClient {
  readonly ws: WebSocket;
  readonly #inbox = new Inbox<{ data: Buffer; isBinary: boolean }>();
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data: Buffer, isBinary: boolean) => this.#inbox.push({ data, isBinary }));
    ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Connects to `url` (with `ws` client options: headers, a CA to trust) and waits for the handshake. */
  static async open(url: string, options: ClientOptions = {}): Promise<WsClient> {
    const client = new WsClient(new WebSocket(url, options));
    await within(once(client.ws, "open"), `open ${url}`);
    return client;
  }

  /** Sends `message` as JSON text. */
  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The next message, parsed as JSON. */
  async next(): Promise<unknown> {
    const { data } = await this.#inbox.next("a WebSocket message");
    return JSON.parse(data.toString());
  }

  /** The next message as it came: bytes and whether it was a binary frame. */
  nextRaw(): Promise<{ data: Buffer; isBinary: boolean }> {
    return this.#inbox.next("a WebSocket message");
  }

  /** Every message received so far, parsed as JSON. */
  get received(): unknown[] {
    return this.#inbox.received.map(({ data }) => JSON.parse(data.toString()));
  }

  /** How the server closed this connection. */
  closedBy(): Promise<{ code: number; reason: string }> {
    return within(this.closed, "the server to close the connection");
  }

  /** Closes from this side and waits until closed. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await within(this.closed, "the client to close");
  }
}

/** A real TCP client that collects what it receives as one string. */
export class TcpClient {
  readonly socket: Socket;
  text = "";

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (this.text += chunk));
    socket.on("error", () => undefined);
  }

  static async open(port: number, host = "127.0.0.1"): Promise<TcpClient> {
    const client = new TcpClient(connect(port, host));
    await within(once(client.socket, "connect"), `connect tcp ${host}:${port}`);
    return client;
  }

  /** Waits until everything received so far is at least `expected` long, then returns it. */
  async until(expected: string): Promise<string> {
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.text.length >= expected.length) {
            this.socket.off("data", check);
            resolve();
          }
        };
        this.socket.on("data", check);
        check();
      }),
      `${JSON.stringify(expected)} over TCP (have ${JSON.stringify(this.text)})`,
    );
    return this.text;
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.destroy();
    await within(once(this.socket, "close"), "the TCP client to close");
  }
}

/** Waits until `predicate()` holds, polling every 5 ms, at most `ms`. */
export async function eventually(predicate: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Things a test opened, closed after it in reverse order. */
export type Cleanups = (() => Promise<unknown> | undefined)[];

/**
 * A plain `ws` server on 127.0.0.1:0 and `n` real clients of it; both are added to `cleanups`.
 * @returns the server-side sockets and the clients, connection by connection.
 */
export async function wsPairs(
  n: number,
  cleanups: Cleanups,
  options: ServerOptions = {},
): Promise<{ server: WebSocket[]; clients: WsClient[] }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, ...options });
  await within(once(wss, "listening"), "ws listen");
  const server: WebSocket[] = [];
  wss.on("connection", (ws) => server.push(ws));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(resolve);
      }),
  );
  const { port } = wss.address() as { port: number };
  const clients = await Promise.all(Array.from({ length: n }, () => WsClient.open(`ws://127.0.0.1:${port}`)));
  cleanups.push(() => Promise.all(clients.map((c) => c.close())));
  await eventually(() => server.length === n, "server-side sockets");
  return { server, clients };
}

/**
 * Tries a WebSocket upgrade and reports the HTTP answer: 101 (then closes the connection), or the
 * refusal's status and body.
 */
export async function upgrade(url: string, options: ClientOptions = {}): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(url, options);
  ws.on("error", () => undefined);
  return within(
    new Promise((resolve) => {
      ws.once("open", () => {
        ws.terminate();
        resolve({ status: 101, body: "" });
      });
      ws.once("unexpected-response", (_request, response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.once("end", () => resolve({ status: response.statusCode ?? 0, body }));
      });
    }),
    `the upgrade to ${url}`,
  );
}

/** Waits until the async `predicate()` holds, polling every 5 ms, at most `ms`. */
export async function until(predicate: () => Promise<boolean>, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The value of the series of metric `name` with `labels` in `registry`, read as a scrape would; 0 if it has none. */
export async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = registry.getSingleMetric(name);
  if (found === undefined) throw new Error(`no metric ${name}`);
  const { values } = await found.get();
  const series = values.find((value) => Object.entries(labels).every(([key, label]) => value.labels[key] === label));
  return series?.value ?? 0;
}

/**
 * One server per test: `start()` starts it with `defaults` under `options`; after each test the
 * clients handed to `closeAfter` are closed, then the server.
 */
export function serverPerTest(defaults: ChannelsServerOptions): {
  start(options?: ChannelsServerOptions): Promise<RunningServer>;
  readonly server: RunningServer;
  closeAfter<T extends { close(): Promise<unknown> }>(client: T): T;
} {
  let current: RunningServer | undefined;
  const closers: { close(): Promise<unknown> }[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c.close()));
    await current?.close();
    current = undefined;
  });
  return {
    async start(options = {}) {
      current = await startServer({ ...defaults, ...options });
      return current;
    },
    get server() {
      if (current === undefined) throw new Error("no server started");
      return current;
    },
    closeAfter(client) {
      closers.push(client);
      return client;
    },
  };
}
