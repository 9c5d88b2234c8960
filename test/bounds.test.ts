import { once } from "node:events";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { clientKey } from "../packages/server/src/address.js";
import { Slots } from "../packages/server/src/slots.js";
import { eventually, metric, serverPerTest, TcpClient, upgrade, WsClient, within } from "./helpers.js";

const fixture = serverPerTest({ port: 0, tcpPort: false });
const start = fixture.start;

function url(query = ""): string {
  return `ws://127.0.0.1:${fixture.server.ws.port}/${query}`;
}

async function client(query = ""): Promise<WsClient> {
  return fixture.closeAfter(await WsClient.open(url(query)));
}

/** A promise the test resolves when it chooses: what a slow hook waits on. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const never = (): Promise<never> => new Promise(() => undefined);

describe("hooks answer within --hook-timeout", () => {
  it("an authenticate that never answers: 401; an authorize that never answers: forbidden; the connection carries on", async () => {
    await start({ hookTimeout: 100, authenticate: (request) => (request.url?.includes("hang") ? never() : { id: "ann" }) });
    expect(await upgrade(url("?hang"))).toEqual({ status: 401, body: "Unauthorized\n" });
    expect(await metric(fixture.server.registry, "ws_channels_refused_total", { reason: "token" })).toBe(1);
    await fixture.server.close();
    await start({ hookTimeout: 100, authorize: (channel) => (channel === "hang" ? never() : true) });
    const c = await client();
    c.send({ join: "hang" });
    c.send({ join: "lobby" });
    expect([await c.next(), await c.next()]).toEqual([{ error: "forbidden", join: "hang" }, { joined: "lobby" }]);
  });

  it("an authorizeTarget that never answers refuses that target (reported unknown); the others are sent", async () => {
    await start({ hookTimeout: 100, authorizeTarget: (_from, to) => (to === "hang" ? never() : true) });
    const [sender, bob, hang] = [await client("?id=ann"), await client("?id=bob"), await client("?id=hang")];
    for (const c of [sender, bob, hang]) {
      c.send({ join: "probe" });
      expect(await c.next()).toEqual({ joined: "probe" }); // the id claims are settled
    }
    sender.send({ targets: ["hang", "bob"], payload: 1 });
    expect(await bob.next()).toEqual({ from: "ann", payload: 1 });
    expect(await sender.next()).toEqual({ error: "unknown targets", targets: ["hang"] });
    expect(hang.received).toEqual([{ joined: "probe" }]);
  });
});

describe("the per-connection backlog", () => {
  it("past --max-pending-bytes the connection is no longer read; once the slow hook answers, every message is handled in order", async () => {
    const hook = gate();
    const maxPendingBytes = 16 * 1024;
    await start({
      maxPendingBytes,
      maxMessagesPerSecond: 100_000,
      maxChannelLength: 2000,
      authorize: async (channel) => (channel === "slow" ? hook.opened.then(() => true) : true),
    });
    const c = await client();
    c.send({ join: "slow" });
    const names = Array.from({ length: 300 }, (_, i) => `${i}:${"x".repeat(1000)}`); // about 300 KB behind the hook
    for (const name of names) c.send({ leave: name });
    await eventually(() => c.ws.bufferedAmount === 0, "the client to hand every message to its socket");
    let paused = 0;
    await eventually(() => {
      void metric(fixture.server.registry, "ws_channels_paused_total", { transport: "ws", reason: "backlog" }).then((n) => (paused = n));
      return paused === 1;
    }, "the connection to be paused");
    hook.open();
    expect(await c.next()).toEqual({ joined: "slow" });
    for (const name of names) expect(await c.next()).toEqual({ left: name });
    // what the server held at most: the limit, and what it had read from the socket when it stopped (64 KiB)
    const peak = await metric(fixture.server.registry, "ws_channels_backlog_peak_bytes", { transport: "ws" });
    expect(peak).toBeGreaterThanOrEqual(maxPendingBytes);
    expect(peak).toBeLessThanOrEqual(maxPendingBytes + 64 * 1024 + 1024);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("a backlog still full after --pending-timeout is closed 1008 too many pending", async () => {
    await start({ maxPending: 3, pendingTimeout: 100, hookTimeout: 60_000, authorize: never });
    const c = await client();
    c.send({ join: "never" });
    for (let i = 0; i < 5; i++) c.send({ leave: `room${i}` });
    expect(await c.closedBy()).toEqual({ code: 1008, reason: "too many pending" });
    expect(await metric(fixture.server.registry, "ws_channels_refused_total", { reason: "too_many_pending" })).toBe(1);
  });
});

describe("connection slots", () => {
  it("upgrades still in authenticate count toward the per-IP limit; one past it is closed 1008 without being asked", async () => {
    const waiting: (() => void)[] = [];
    await start({
      maxConnectionsPerIp: 2,
      hookTimeout: 60_000,
      authenticate: () => new Promise((resolve) => waiting.push(() => resolve({ id: "ann" }))),
    });
    const pending = [new WebSocket(url()), new WebSocket(url())];
    await eventually(() => waiting.length === 2, "two upgrades in authenticate");
    const third = await client();
    expect(await third.closedBy()).toEqual({ code: 1008, reason: "too many connections" });
    expect(waiting).toHaveLength(2);
    for (const release of waiting) release();
    await within(Promise.all(pending.map((ws) => once(ws, "open"))), "the two upgrades to open");
    for (const ws of pending) ws.close();
  });

  it("--max-connections caps the node, WebSocket and TCP together; a freed slot is taken again", async () => {
    await start({ maxConnections: 2, tcpPort: 0 });
    const first = await client();
    const tcp = await TcpClient.open(fixture.server.tcp!.port);
    expect(await (await client()).closedBy()).toEqual({ code: 1008, reason: "too many connections" });
    const refusedTcp = await TcpClient.open(fixture.server.tcp!.port);
    await within(once(refusedTcp.socket, "close"), "the server to drop the TCP connection past the cap");
    expect(await metric(fixture.server.registry, "ws_channels_refused_total", { reason: "too_many_connections" })).toBe(2);
    await first.close();
    await eventually(() => fixture.server.connections().slots === 1, "the slot to be given back");
    const next = await client();
    next.send({ join: "room" });
    expect(await next.next()).toEqual({ joined: "room" });
    await tcp.close();
  });

  it("counts IPv4-mapped addresses as IPv4 and IPv6 ones per /64", () => {
    expect(clientKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("2001:db8:0:1:2:3:4:5")).toBe("2001:db8:0:1::/64");
    expect(clientKey("2001:DB8:0:1::9")).toBe("2001:db8:0:1::/64");
    expect(clientKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(clientKey("64:ff9b::192.0.2.7")).toBe("64:ff9b:0:0::/64");
    const slots = new Slots(2, 10);
    expect(typeof slots.take("2001:db8:0:1::a")).toBe("function");
    expect(typeof slots.take("2001:db8:0:1:ffff::b")).toBe("function");
    expect(slots.take("2001:db8:0:1::c")).toBe("per IP"); // a third address of the same /64
    expect(typeof slots.take("2001:db8:0:2::a")).toBe("function");
    const release = slots.take("192.0.2.7");
    expect(typeof slots.take("::ffff:192.0.2.7")).toBe("function");
    expect(slots.take("192.0.2.7")).toBe("per IP");
    if (typeof release === "function") release();
    expect(slots.taken).toEqual({ total: 4, clients: 3 });
  });
});

describe("shutdown", () => {
  it("drops an upgrade whose authenticate never answers, and close() returns within its grace period", async () => {
    const asked = gate();
    await start({
      graceMs: 300,
      hookTimeout: 60_000,
      authenticate: () => {
        asked.open();
        return never();
      },
    });
    const ws = new WebSocket(url());
    ws.on("error", () => undefined); // the socket hangs up without an answer
    const closed = new Promise((resolve) => ws.once("close", resolve));
    await within(asked.opened, "authenticate to be asked");
    await within(fixture.server.close(), "close() within the grace period", 300 + 1000);
    await within(closed, "the pending upgrade to be closed");
  });
});

describe("refusal log lines", () => {
  it("are sampled to one per reason per second, with the count of those not printed; the metric counts every one", async () => {
    const lines: { reason?: string; unlogged?: number }[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await start({ logger, allowedOrigins: ["https://app.example"] });
    const refusals = await Promise.all(Array.from({ length: 30 }, () => upgrade(url(), { origin: "https://evil.example" })));
    expect(refusals.every(({ status }) => status === 403)).toBe(true);
    expect(await metric(fixture.server.registry, "ws_channels_refused_total", { reason: "origin" })).toBe(30);
    const origin = (): typeof lines => lines.filter((line) => line.reason === "origin");
    const accounted = (): number => origin().reduce((sum, line) => sum + 1 + (line.unlogged ?? 0), 0);
    await eventually(() => accounted() === 30, "every refusal printed or counted in a printed line");
    expect(origin().length).toBeGreaterThanOrEqual(2);
    expect(origin().length).toBeLessThanOrEqual(3); // 30 upgrades may straddle one period's end
  });
});
