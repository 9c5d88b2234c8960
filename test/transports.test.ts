import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket, * as wsModule from "ws";
import { Channels } from "../packages/ws-channels/src/index.js";
import { type Cleanups, eventually, TcpClient, within, wsPairs } from "./helpers.js";

const Sender = (wsModule as unknown as { Sender: { frame: (...args: unknown[]) => unknown } }).Sender;
const cleanups: Cleanups = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A TCP server on 127.0.0.1:0 and `n` real clients; returns both sides. */
async function tcpPairs(n: number): Promise<{ server: Socket[]; clients: TcpClient[] }> {
  const server: Socket[] = [];
  const listener: Server = createServer((socket) => server.push(socket));
  listener.listen(0, "127.0.0.1");
  await within(once(listener, "listening"), "tcp listen");
  const { port } = listener.address() as { port: number };
  const clients: TcpClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await TcpClient.open(port));
  await eventually(() => server.length === n, "server-side sockets");
  cleanups.push(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const s of server) s.destroy();
    await new Promise((resolve) => listener.close(resolve));
  });
  return { server, clients };
}

describe("ws members", () => {
  it("build one frame per broadcast and write those bytes to every socket, text and binary", async () => {
    const { server, clients } = await wsPairs(5, cleanups);
    const channels = new Channels({ sharder: () => 2 });
    for (const ws of server) channels.join("room", ws);
    const frame = vi.spyOn(Sender, "frame");
    const sends = server.map((ws) => vi.spyOn(ws, "send"));
    const long = "é".repeat(40_000); // 80,000 bytes: the 64-bit length form of RFC 6455 §5.2
    const binary = Buffer.from([0, 1, 2, 254, 255]);
    for (const message of ["hi", "x".repeat(300), long]) {
      expect(await channels.broadcast("room", message)).toEqual({ delivered: 5, failed: 0, dropped: 0 });
    }
    expect(await channels.broadcast("room", binary)).toEqual({ delivered: 5, failed: 0, dropped: 0 });
    expect(frame).toHaveBeenCalledTimes(4);
    for (const send of sends) expect(send).not.toHaveBeenCalled();
    for (const client of clients) {
      for (const text of ["hi", "x".repeat(300), long]) {
        const got = await client.nextRaw();
        expect(got.isBinary).toBe(false);
        expect(got.data.toString("utf8")).toBe(text);
      }
      const got = await client.nextRaw();
      expect(got.isBinary).toBe(true);
      expect(got.data).toEqual(binary);
    }
  });

  it("keep order with a sender busy compressing (permessage-deflate): the broadcast waits behind it", async () => {
    const { server, clients } = await wsPairs(1, cleanups, { perMessageDeflate: { threshold: 0 } });
    const channels = new Channels();
    const [ws] = server;
    channels.join("room", ws!);
    const big = "compress me ".repeat(20_000);
    ws!.send(big); // deflating now: the sender is busy
    await channels.broadcast("room", "after");
    expect((await clients[0]!.nextRaw()).data.toString()).toBe(big);
    expect((await clients[0]!.nextRaw()).data.toString()).toBe("after");
  });

  it("never puts a frame inside a fragmented message the sender is still sending", async () => {
    const { server, clients } = await wsPairs(1, cleanups);
    const channels = new Channels();
    const [ws] = server;
    channels.join("room", ws!);
    ws!.send("part one, ", { fin: false });
    await channels.broadcast("room", "broadcast");
    ws!.send("part two", { fin: true });
    // ws.send continues the open message, as any send from the application would: what matters
    // is that no frame with a new opcode lands inside it (a protocol error, close 1002).
    expect(String((await clients[0]!.nextRaw()).data)).toBe("part one, broadcast");
    expect(String((await clients[0]!.nextRaw()).data)).toBe("part two");
    expect(clients[0]!.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("a closed socket cannot join", async () => {
    const { server } = await wsPairs(1, cleanups);
    const channels = new Channels();
    server[0]!.close();
    expect(channels.join("room", server[0]!)).toBe(false);
    expect(channels.count("room")).toBe(0);
  });

  it("a client-side socket (masked frames) is written through ws.send and arrives intact", async () => {
    const { server, clients } = await wsPairs(1, cleanups);
    const received = new Promise<string>((resolve) => server[0]!.once("message", (data) => resolve(String(data))));
    const channels = new Channels();
    channels.join("up", clients[0]!.ws);
    expect(await channels.broadcast("up", "from the client side")).toEqual({ delivered: 1, failed: 0, dropped: 0 });
    expect(await within(received, "the message at the server")).toBe("from the client side");
  });

  it("a socket that closes leaves every channel by itself", async () => {
    const { server, clients } = await wsPairs(2, cleanups);
    const channels = new Channels();
    const listeners = server[0]!.listenerCount("close");
    for (const ws of server) {
      channels.join("a", ws);
      channels.join("b", ws);
    }
    await clients[0]!.close();
    await eventually(() => channels.count("a") === 1 && channels.count("b") === 1, "the closed socket to leave");
    expect(channels.channelsOf(server[0]!)).toEqual([]);
    expect(server[0]!.listenerCount("close")).toBe(listeners); // nothing of ours is left on it
  });

  it("a closing socket is counted as failed and removed; the others still receive", async () => {
    const { server, clients } = await wsPairs(3, cleanups);
    const channels = new Channels();
    for (const ws of server) channels.join("room", ws);
    server[1]!.close(); // CLOSING: no more data frames may go out (RFC 6455 §5.5.1)
    expect(await channels.broadcast("room", "still")).toEqual({ delivered: 2, failed: 1, dropped: 0 });
    expect(channels.member("room", server[1]!)).toBe(false);
    expect(String((await clients[0]!.nextRaw()).data)).toBe("still");
    expect(String((await clients[2]!.nextRaw()).data)).toBe("still");
  });
});

describe("net.Socket members", () => {
  it("get the message bytes (text as UTF-8), and leave every channel when they close", async () => {
    const { server, clients } = await tcpPairs(2);
    const channels = new Channels();
    for (const socket of server) channels.join("room", socket);
    expect(await channels.broadcast("room", "héllo ")).toEqual({ delivered: 2, failed: 0, dropped: 0 });
    expect(await channels.broadcast("room", Buffer.from("bytes"))).toEqual({ delivered: 2, failed: 0, dropped: 0 });
    for (const client of clients) expect(await client.until("héllo bytes")).toBe("héllo bytes");
    await clients[0]!.close();
    await eventually(() => channels.count("room") === 1, "the closed socket to leave");
  });

  it("a destroyed socket is counted as failed, and cannot join again", async () => {
    const { server } = await tcpPairs(2);
    const channels = new Channels();
    for (const socket of server) channels.join("room", socket);
    server[0]!.destroy();
    expect(await channels.broadcast("room", "x")).toEqual({ delivered: 1, failed: 1, dropped: 0 });
    expect(channels.join("room", server[0]!)).toBe(false);
  });
});
