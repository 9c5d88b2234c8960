import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { TCP_CHANNEL } from "../packages/server/src/tcp-server.js";
import { eventually, TcpClient, WsClient } from "./helpers.js";

let server: RunningServer;
const clients: TcpClient[] = [];

beforeEach(async () => {
  server = await startServer({ port: 0, tcpPort: 0 });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
});

async function connectAll(n: number): Promise<TcpClient[]> {
  for (let i = 0; i < n; i++) clients.push(await TcpClient.open(server.tcp!.port));
  await eventually(() => server.channels.count(TCP_CHANNEL) === n, `${n} TCP members`);
  return clients;
}

describe("TCP broadcast port", () => {
  it("writes a chunk from one client to the other two, byte for byte, and not back to it", async () => {
    const [a, b, c] = await connectAll(3);
    a!.socket.write("hello from a\n");
    expect(await b!.until("hello from a\n")).toBe("hello from a\n");
    expect(await c!.until("hello from a\n")).toBe("hello from a\n");
    b!.socket.write("é from b\n");
    // a gets b's line; had it got its own, that would have come first
    expect(await a!.until("é from b\n")).toBe("é from b\n");
    expect(await c!.until("hello from a\né from b\n")).toBe("hello from a\né from b\n");
  });

  it("drops a disconnected client and keeps serving the others", async () => {
    const [a, b, c] = await connectAll(3);
    await c!.close();
    await eventually(() => server.channels.count(TCP_CHANNEL) === 2, "the closed client to leave");
    a!.socket.write("still here");
    expect(await b!.until("still here")).toBe("still here");
  });

  it('does not mix with WebSocket channels: a WebSocket client in channel "0" gets no TCP bytes', async () => {
    const [a] = await connectAll(2);
    const ws = await WsClient.open(`ws://127.0.0.1:${server.ws.port}/?id=w`);
    ws.send({ join: String(TCP_CHANNEL) });
    expect(await ws.next()).toEqual({ joined: "0" });
    a!.socket.write("tcp only");
    await clients[1]!.until("tcp only");
    ws.send({ targets: ["w"], payload: "marker" });
    expect(await ws.next()).toEqual({ from: "w", payload: "marker" });
    await ws.close();
  });
});
