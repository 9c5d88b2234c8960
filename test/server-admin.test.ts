import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { jwtAuthenticator, type RunningServer, type ServerOptions, secretKey, startServer } from "../packages/server/src/server.js";
import { eventually, TcpClient, upgrade, WsClient, within } from "./helpers.js";

const servers: RunningServer[] = [];
const closers: { close(): Promise<void> }[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(closers.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: ServerOptions = {}): Promise<RunningServer> {
  const server = await startServer({ port: 0, tcpPort: 0, adminPort: 0, ...options });
  servers.push(server);
  return server;
}

async function get(server: RunningServer, path: string): Promise<{ status: number; type: string; body: string }> {
  const response = await within(fetch(`http://127.0.0.1:${server.admin!.port}${path}`), `GET ${path}`);
  return { status: response.status, type: response.headers.get("content-type") ?? "", body: await response.text() };
}

/** The value of one series in a Prometheus text scrape (`name` with its labels, as printed). */
async function scrape(server: RunningServer, series: string): Promise<number> {
  const { body } = await get(server, "/metrics");
  const line = body.split("\n").find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} in the scrape`);
  return Number(line.slice(series.length + 1));
}

async function member(server: RunningServer, channel: string): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${server.ws.port}/`);
  closers.push(c);
  c.send({ join: channel });
  expect(await c.next()).toEqual({ joined: channel });
  return c;
}

describe("GET /metrics", () => {
  it("serves Prometheus text with the process metrics and every ws_channels series", async () => {
    const server = await start();
    const { status, type, body } = await get(server, "/metrics");
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      "process_cpu_user_seconds_total",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
      'ws_channels_connections{transport="ws"}',
      'ws_channels_connections{transport="tcp"}',
      "ws_channels_channels",
      "ws_channels_memberships",
      "ws_channels_broadcasts_total",
      "ws_channels_deliveries_total",
      "ws_channels_failed_total",
      "ws_channels_dropped_total",
      'ws_channels_refused_total{reason="token"}',
      'ws_channels_refused_total{reason="origin"}',
    ]) {
      expect(body).toContain(`\n${name} `);
    }
    // alone in its process the server is not one of several workers: no series is per worker
    expect(body).not.toMatch(/worker="/);
  });

  it("counters move with real traffic: a say to 3 members adds 1 broadcast and 3 deliveries", async () => {
    const server = await start();
    const members = [await member(server, "room"), await member(server, "room"), await member(server, "room")];
    const tcp = await TcpClient.open(server.tcp!.port);
    closers.push(tcp);
    await eventually(() => server.channels.count(0) === 1, "the TCP client");
    const before = {
      broadcasts: await scrape(server, "ws_channels_broadcasts_total"),
      deliveries: await scrape(server, "ws_channels_deliveries_total"),
    };
    members[0]!.send({ say: "hi", to: "room" });
    for (const m of members) expect(await m.next()).toEqual({ to: "room", say: "hi" });
    await eventually(() => server.channels.stats().inFlight === 0, "the broadcast to settle");
    expect(await scrape(server, "ws_channels_broadcasts_total")).toBe(before.broadcasts + 1);
    expect(await scrape(server, "ws_channels_deliveries_total")).toBe(before.deliveries + 3);
    expect(await scrape(server, 'ws_channels_connections{transport="ws"}')).toBe(3);
    expect(await scrape(server, 'ws_channels_connections{transport="tcp"}')).toBe(1);
    expect(await scrape(server, "ws_channels_channels")).toBe(2); // "room" and the TCP channel
    expect(await scrape(server, "ws_channels_memberships")).toBe(4);
  });

  it("refusals are counted by reason: a bad token, an origin, an id in use, an invalid payload", async () => {
    const server = await start({
      authenticate: jwtAuthenticator(secretKey("s".repeat(32))),
      allowedOrigins: ["https://app.example"],
    });
    const url = `ws://127.0.0.1:${server.ws.port}/`;
    const refused = (reason: string): Promise<number> => scrape(server, `ws_channels_refused_total{reason="${reason}"}`);
    expect(await refused("token")).toBe(0);
    expect((await upgrade(`${url}?token=bad`)).status).toBe(401);
    expect(await refused("token")).toBe(1);
    expect((await upgrade(url, { origin: "https://evil.example" })).status).toBe(403);
    expect(await refused("origin")).toBe(1);
    expect(await refused("token")).toBe(1);
  });

  it("unauthenticated refusals: id in use, invalid payload, forbidden join", async () => {
    const server = await start({ authorize: (channel) => channel !== "secret" });
    const url = `ws://127.0.0.1:${server.ws.port}/`;
    const first = await WsClient.open(`${url}?id=dup`);
    closers.push(first);
    const second = await WsClient.open(`${url}?id=dup`);
    expect(await second.closedBy()).toEqual({ code: 1008, reason: "id in use" });
    first.send({ join: "secret" });
    expect(await first.next()).toEqual({ error: "forbidden", join: "secret" });
    first.ws.send("not json");
    expect((await first.closedBy()).code).toBe(3000);
    const refused = (reason: string): Promise<number> => scrape(server, `ws_channels_refused_total{reason="${reason}"}`);
    expect([await refused("id_in_use"), await refused("forbidden"), await refused("invalid_payload")]).toEqual([1, 1, 1]);
  });

  it("two servers in one process keep their own registries", async () => {
    const [a, b] = [await start(), await start()];
    await member(a, "room");
    expect(await scrape(a, "ws_channels_memberships")).toBe(1);
    expect(await scrape(b, "ws_channels_memberships")).toBe(0);
  });
});

describe("GET /healthz and /readyz", () => {
  it("healthz is 200; readyz is 200 with every listener up, 503 while shutting down", async () => {
    const server = await start({ graceMs: 1000 });
    expect(await get(server, "/healthz")).toMatchObject({ status: 200 });
    const ready = await get(server, "/readyz");
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, closing: false, ws: true, tcp: true });
    expect((await get(server, "/nothing")).status).toBe(404);
    // A peer that never answers the close handshake holds the shutdown for graceMs.
    const socket = connect(server.ws.port, "127.0.0.1");
    sockets.push(socket);
    socket.on("error", () => undefined);
    await within(once(socket, "connect"), "connect");
    socket.write(
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await eventually(() => server.connections().connections === 1, "the silent peer");
    const closing = server.close();
    const during = await get(server, "/readyz");
    expect(during.status).toBe(503);
    expect(JSON.parse(during.body)).toMatchObject({ ready: false, closing: true });
    await within(closing, "the shutdown");
  });

  it("readyz lists only the listeners there are: no tcp when the TCP port is off", async () => {
    const server = await startServer({ port: 0, adminPort: 0, authenticate: () => ({ id: "x" }) });
    servers.push(server);
    expect(JSON.parse((await get(server, "/readyz")).body)).toEqual({ ready: true, closing: false, ws: true });
  });

  it("without adminPort there is no admin listener", async () => {
    const server = await startServer({ port: 0, tcpPort: 0 });
    servers.push(server);
    expect(server.admin).toBeUndefined();
  });
});
