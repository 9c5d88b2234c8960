import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { eventually, TcpClient, WsClient, within } from "./helpers.js";

const INTERVAL = 200;
const TIMEOUT = 200;
/** Timer noise on a loaded 2-core machine, on top of the one interval of slack the design allows. */
const NOISE_MS = 150;

let server: RunningServer | undefined;
const opened: { close(): Promise<void> }[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(opened.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

/**
 * A client that completes the WebSocket handshake, joins `channel` with one masked frame, and then
 * never reads nor answers anything: a peer whose network vanished.
 */
async function deadPeer(port: number, target: string, channel: string): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  socket.on("error", () => undefined);
  await within(once(socket, "connect"), "connect");
  socket.write(
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  let head = "";
  await within(
    new Promise<void>((resolve) => {
      const read = (chunk: Buffer): void => {
        head += chunk.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        socket.off("data", read);
        socket.pause(); // from now on it reads nothing
        resolve();
      };
      socket.on("data", read);
    }),
    "the 101 response",
  );
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  const payload = Buffer.from(JSON.stringify({ join: channel }));
  // FIN + text opcode; masked with the all-zero key, so the payload goes as is (RFC 6455 section 5.3)
  socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]));
  return socket;
}

describe("dead peers (--ping-interval 200, --ping-timeout 200)", () => {
  it("a peer that never reads nor answers is terminated within interval + timeout + one interval, leaves, and frees its id", async () => {
    server = await startServer({ port: 0, tcpPort: 0, pingInterval: INTERVAL, pingTimeout: TIMEOUT });
    const running = server;
    await deadPeer(running.ws.port, "/?id=ghost", "room");
    await eventually(() => running.channels.count("room") === 1, "the dead peer's join");
    const joined = performance.now(); // its last message: silent from here on
    await eventually(() => running.connections().connections === 0, "the dead peer to be terminated");
    const silentFor = performance.now() - joined;
    expect(silentFor).toBeGreaterThanOrEqual(INTERVAL + TIMEOUT - 20);
    expect(silentFor).toBeLessThanOrEqual(INTERVAL + TIMEOUT + INTERVAL + NOISE_MS);
    expect(running.channels.stats()).toMatchObject({ channels: 0, memberships: 0 });
    const again = await WsClient.open(`ws://127.0.0.1:${running.ws.port}/?id=ghost`);
    opened.push(again);
    const sender = await WsClient.open(`ws://127.0.0.1:${running.ws.port}/`);
    opened.push(sender);
    sender.send({ targets: ["ghost"], payload: "the id is free" });
    expect(await again.next()).toEqual({ from: null, payload: "the id is free" });
  });

  it("a healthy client that only listens is pinged and never dropped", async () => {
    server = await startServer({ port: 0, tcpPort: 0, pingInterval: INTERVAL, pingTimeout: TIMEOUT });
    const running = server;
    const listener = await WsClient.open(`ws://127.0.0.1:${running.ws.port}/`);
    opened.push(listener);
    let pings = 0;
    listener.ws.on("ping", () => pings++);
    listener.send({ join: "room" });
    expect(await listener.next()).toEqual({ joined: "room" });
    // six pings: three times interval + timeout without a message from it
    await eventually(() => pings >= 6, "six pings", 5000);
    expect(listener.ws.readyState).toBe(1);
    expect(running.channels.count("room")).toBe(1);
    const speaker = await WsClient.open(`ws://127.0.0.1:${running.ws.port}/`);
    opened.push(speaker);
    speaker.send({ join: "room" });
    await speaker.next();
    speaker.send({ say: "still here", to: "room" });
    expect(await listener.next()).toEqual({ to: "room", say: "still here" });
  });

  it("TCP clients get TCP keep-alive with the ping interval", async () => {
    server = await startServer({ port: 0, tcpPort: 0, pingInterval: 7000 });
    const client = await TcpClient.open(server.tcp!.port);
    opened.push(client);
    const local = client.socket.localPort;
    // ss shows the server side's keep-alive timer: "timer:(keepalive,<time left>,0)"
    const row = (): string =>
      execFileSync("ss", ["-tnoH", "state", "established", `( sport = :${server!.tcp!.port} and dport = :${local} )`], {
        encoding: "utf8",
      });
    await eventually(() => row().includes("keepalive"), "the server's keep-alive timer");
    const seconds = Number(/timer:\(keepalive,(\d+(?:\.\d+)?)(ms|sec)/.exec(row())?.[1]);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(7);
  });
});
