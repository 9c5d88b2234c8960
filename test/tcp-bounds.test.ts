import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { TCP_CHANNEL } from "../packages/server/src/tcp-server.js";
import { eventually, metric, serverPerTest, TcpClient, within } from "./helpers.js";

const fixture = serverPerTest({ port: 0, tcpPort: 0 });
const start = fixture.start;

async function connect(n: number): Promise<TcpClient[]> {
  const opened: TcpClient[] = [];
  for (let i = 0; i < n; i++) opened.push(fixture.closeAfter(await TcpClient.open(fixture.server.tcp!.port)));
  await eventually(() => fixture.server.channels.count(TCP_CHANNEL) === n, `${n} TCP members`);
  return opened;
}

describe("TCP port bounds", () => {
  it("a client writing faster than its chunks are broadcast is no longer read: the server holds at most --max-pending-bytes and one read", async () => {
    const maxPendingBytes = 64 * 1024;
    // over 256 members, so that each broadcast goes through the writer pool instead of at once
    await start({ maxPendingBytes, highWaterMark: 64 * 1024, maxMessagesPerSecond: 1_000_000 });
    const [sender, ...readers] = await connect(300);
    for (const reader of readers) reader.socket.pause(); // they read nothing: slow consumers
    const total = 8 * 1024 * 1024;
    const written = new Promise((resolve) => sender!.socket.write(Buffer.alloc(total, 97), resolve));
    await within(written, "the server to read all 8 MiB", 30_000);
    const peak = await metric(fixture.server.registry, "ws_channels_backlog_peak_bytes", { transport: "tcp" });
    expect(peak).toBeGreaterThanOrEqual(maxPendingBytes);
    expect(peak).toBeLessThanOrEqual(maxPendingBytes + 64 * 1024);
    expect(await metric(fixture.server.registry, "ws_channels_paused_total", { transport: "tcp", reason: "backlog" })).toBeGreaterThan(0);
  }, 40_000);

  it("past --max-messages-per-second a client is read more slowly, and loses nothing", async () => {
    await start({ maxMessagesPerSecond: 4 });
    const [sender, reader] = await connect(2);
    let expected = "";
    for (let i = 0; i < 8; i++) {
      sender!.socket.write(`chunk ${i}\n`);
      expected += `chunk ${i}\n`;
      // once the reader has it, the server read it as a chunk of its own
      expect(await reader!.until(expected)).toBe(expected);
    }
    expect(await metric(fixture.server.registry, "ws_channels_paused_total", { transport: "tcp", reason: "rate" })).toBeGreaterThan(0);
  });

  it("one connection past --max-connections-per-ip is dropped and counted; the others stay", async () => {
    await start({ maxConnectionsPerIp: 2 });
    const [a, b] = await connect(2);
    const third = fixture.closeAfter(await TcpClient.open(fixture.server.tcp!.port));
    await within(once(third.socket, "close"), "the server to drop the third connection");
    expect(await metric(fixture.server.registry, "ws_channels_refused_total", { reason: "too_many_connections" })).toBe(1);
    a!.socket.write("still here");
    expect(await b!.until("still here")).toBe("still here");
  });
});
