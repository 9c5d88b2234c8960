import type { IncomingMessage } from "node:http";
import WebSocket, { WebSocketServer } from "ws";
import type { Channels } from "../channels.js";
import { type Bound, bound } from "./address.js";
import { type Command, parseCommand } from "./protocol.js";

/** Close codes and reasons the server sends (4000-4999 would be private; 3000 is the protocol's own). */
export const CLOSE = {
  goingAway: { code: 1001, reason: "server shutting down" },
  idInUse: { code: 1008, reason: "id in use" },
  invalidPayload: { code: 3000, reason: "invalid payload" },
  notAMember: { code: 3000, reason: "cannot send to channel" },
} as const;

export interface WebSocketFrontOptions {
  host: string;
  port: number;
  /** The largest message a client may send, in bytes; larger: close 1009 (by `ws`). */
  maxFrameSize: number;
  /** The longest channel name, in characters; longer: close 3000 `invalid payload`. */
  maxChannelLength: number;
}

/**
 * The WebSocket JSON protocol on top of a `Channels`: join, leave, say to a channel, and targeted
 * messages to connection ids given as `/?id=ID`. Call `listen()`, then `close()` to shut down.
 */
export class WebSocketFront {
  readonly #channels: Channels;
  readonly #options: WebSocketFrontOptions;
  readonly #ids = new Map<string, WebSocket>();
  #wss: WebSocketServer | undefined;

  constructor(channels: Channels, options: WebSocketFrontOptions) {
    this.#channels = channels;
    this.#options = options;
  }

  /** Starts listening. @returns the bound address (port 0 gives a free port). */
  listen(): Promise<Bound> {
    const { host, port, maxFrameSize } = this.#options;
    const wss = new WebSocketServer({ host, port, maxPayload: maxFrameSize, perMessageDeflate: false });
    this.#wss = wss;
    wss.on("connection", (ws, request) => this.#connect(ws, request));
    return new Promise((resolve, reject) => {
      wss.once("error", reject);
      wss.once("listening", () => {
        wss.off("error", reject);
        resolve(bound(wss.address(), { host, port }));
      });
    });
  }

  /**
   * Stops accepting, closes every connection with 1001, and waits for them to close, at most
   * `graceMs` ms before the rest are terminated.
   */
  async close(graceMs: number): Promise<void> {
    const wss = this.#wss;
    if (wss === undefined) return;
    const closed = [...wss.clients].map((ws) => new Promise((resolve) => {
      ws.once("close", resolve);
      ws.close(CLOSE.goingAway.code, CLOSE.goingAway.reason);
    }));
    const timer = setTimeout(() => wss.clients.forEach((ws) => ws.terminate()), graceMs);
    await Promise.all(closed);
    clearTimeout(timer);
    await new Promise((resolve) => wss.close(resolve));
  }

  #connect(ws: WebSocket, request: IncomingMessage): void {
    ws.on("error", () => undefined); // `ws` closes the connection itself; the others carry on
    const id = new URL(request.url ?? "/", "http://localhost").searchParams.get("id") || undefined;
    if (id !== undefined) {
      if (this.#ids.has(id)) return ws.close(CLOSE.idInUse.code, CLOSE.idInUse.reason);
      this.#ids.set(id, ws);
      ws.once("close", () => this.#ids.delete(id));
    }
    const inOrder = serial();
    ws.on("message", (data: Buffer, isBinary: boolean) => inOrder(() => this.#receive(ws, data, isBinary)));
  }

  #receive(ws: WebSocket, data: Buffer, isBinary: boolean): Promise<void> | void {
    if (ws.readyState !== WebSocket.OPEN) return;
    const command = isBinary ? undefined : parseCommand(data.toString("utf8"), this.#options.maxChannelLength);
    if (command === undefined) return ws.close(CLOSE.invalidPayload.code, CLOSE.invalidPayload.reason);
    return this.#run(ws, command);
  }

  #run(ws: WebSocket, command: Command): Promise<void> | void {
    const channels = this.#channels;
    switch (command.kind) {
      case "join":
        channels.join(command.channel, ws);
        return ws.send(JSON.stringify({ joined: command.channel }));
      case "leave":
        channels.leave(command.channel, ws);
        return ws.send(JSON.stringify({ left: command.channel }));
      case "say":
        if (!channels.member(command.channel, ws)) return ws.close(CLOSE.notAMember.code, CLOSE.notAMember.reason);
        return channels.broadcast(command.channel, JSON.stringify({ to: command.channel, say: command.say })).then(
          () => undefined,
          () => undefined, // rejected only once channels are closed, during shutdown
        );
      case "targets":
        return this.#sendTo(ws, command.targets, command.payload);
    }
  }

  #sendTo(sender: WebSocket, targets: readonly (string | number)[], payload: unknown): void {
    const text = JSON.stringify(payload);
    const seen = new Set<string>();
    const unknown: (string | number)[] = [];
    for (const target of targets) {
      const id = String(target);
      const ws = this.#ids.get(id);
      if (ws === undefined) unknown.push(target);
      else if (!seen.has(id)) ws.send(text);
      seen.add(id);
    }
    if (unknown.length > 0) sender.send(JSON.stringify({ error: "unknown targets", targets: unknown }));
  }
}

/**
 * Runs tasks one after another: a task that returns a promise holds back the ones after it until
 * it settles, so replies leave a connection in the order its messages came in.
 */
function serial(): (task: () => Promise<void> | void) => void {
  let tail: Promise<void> | undefined;
  return (task) => {
    if (tail === undefined) {
      const wait = task();
      if (wait === undefined) return;
      tail = wait;
    } else {
      tail = tail.then(task);
    }
    const mine = tail;
    void mine.then(() => {
      if (tail === mine) tail = undefined;
    });
  };
}
