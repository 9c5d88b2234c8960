import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { RawClient } from "../bench/e2e/client.js";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { eventually, WsClient, within } from "./helpers.js";

const MEMBERS = 1000;
const MARK = 64 * 1024;

let server: RunningServer | undefined;
const raw: RawClient[] = [];
afterEach(async () => {
  for (const client of raw.splice(0)) client.reset();
  await server?.close();
  server = undefined;
});

const SIZE = 100; // bytes per message: a decimal sequence number padded with spaces

/** A reader: joins "soak", then checks that the messages' sequence numbers come 0, 1, 2, ... */
class Reader {
  next = 0;
  wrong = 0;
  joined = false;
  readonly client = new RawClient(
    0,
    (_, buffer, start, end) => this.receive(buffer, start, end),
    () => undefined,
  );

  receive(buffer: Buffer, start: number, end: number): void {
    if (!this.joined) {
      this.joined = true; // {"joined": "soak"}
      return;
    }
    let n = 0;
    for (let i = start; i < end && buffer[i] !== 0x20; i++) n = n * 10 + buffer[i]! - 48;
    if (n === this.next) this.next++;
    else this.wrong++;
  }
}

/** MEMBERS - 1 readers and one client that stops reading for the whole run, all in "soak". */
async function room(policy: "skip" | "close"): Promise<{ readers: Reader[]; stalled: WsClient; stalledMember: WebSocket }> {
  server = await startServer({ port: 0, tcpPort: 0, highWaterMark: MARK, slowConsumer: policy, maxConnectionsPerIp: 1_000_000 });
  const stalled = await WsClient.open(`ws://127.0.0.1:${server.ws.port}/?id=stalled`);
  stalled.send({ join: "soak" });
  expect(await stalled.next()).toEqual({ joined: "soak" });
  (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const readers = Array.from({ length: MEMBERS - 1 }, () => new Reader());
  for (let i = 0; i < readers.length; i += 100) {
    await Promise.all(
      readers.slice(i, i + 100).map(async (reader) => {
        raw.push(reader.client);
        await reader.client.open(server!.ws.port, "/");
        reader.client.sendText('{"join": "soak"}');
      }),
    );
  }
  await eventually(() => server!.channels.count("soak") === MEMBERS, "every member to join", 30_000);
  const stalledMember = server.channels.reduce("soak", undefined as WebSocket | undefined, (found, { member, meta }) =>
    meta?.id === "stalled" ? (member as WebSocket) : found,
  )!;
  // Loopback kernel buffers take several MB before the server holds anything for a client that
  // stops reading: fill them first, with direct sends, until the server starts holding bytes.
  for (let i = 0; i < 2000 && stalledMember.bufferedAmount === 0; i++) {
    await server.channels.send(stalledMember, Buffer.alloc(16 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 2)); // the write completes in a later poll phase
  }
  expect(stalledMember.bufferedAmount).toBeGreaterThan(0);
  expect(stalledMember.bufferedAmount).toBeLessThanOrEqual(MARK);
  return { readers, stalled, stalledMember };
}

/**
 * `count` broadcasts in batches of 100, at most three batches ahead of the slowest reader (the
 * readers share this process, so an unpaced flood would outrun them and make them slow too),
 * sampling the stalled member's unsent bytes after each batch.
 */
async function flood(count: number, stalledMember: WebSocket, readers: Reader[]): Promise<number> {
  let peak = 0;
  for (let sent = 0; sent < count; sent += 100) {
    const batch = Array.from({ length: 100 }, (_, k) => server!.channels.broadcast("soak", String(sent + k).padEnd(SIZE, " ")));
    await Promise.all(batch);
    peak = Math.max(peak, stalledMember.bufferedAmount);
    await eventually(() => readers.every((r) => r.next >= sent - 200 || r.wrong > 0), "the readers to keep up", 30_000);
  }
  return peak;
}

describe("soak: one member of 1,000 stops reading while 10,000 broadcasts go out", () => {
  it("skip: the others get all 10,000 in order; the stalled one costs at most the mark plus one message", async () => {
    const { readers, stalledMember } = await room("skip");
    const peak = await flood(10_000, stalledMember, readers);
    await eventually(() => readers.every((r) => r.next === 10_000 || r.wrong > 0), "every reader to get everything", 60_000);
    expect(readers.filter((r) => r.next !== 10_000 || r.wrong > 0)).toHaveLength(0);
    const { dropped } = server!.channels.stats();
    console.log(
      `soak (skip): ${MEMBERS} members, 10,000 broadcasts, stalled member peak ${peak} bytes unsent (mark ${MARK}), ${dropped} messages skipped for it`,
    );
    expect(peak).toBeLessThanOrEqual(MARK + SIZE + 2); // the mark plus one message (and its 2-byte frame header)
    expect(dropped).toBeGreaterThan(0);
    expect(server!.channels.count("soak")).toBe(MEMBERS);
  }, 180_000);

  it("close: the stalled one is closed with 1013, leaves, and is counted; the others get everything", async () => {
    const { readers, stalled, stalledMember } = await room("close");
    const peak = await flood(10_000, stalledMember, readers);
    await eventually(() => readers.every((r) => r.next === 10_000 || r.wrong > 0), "every reader to get everything", 60_000);
    expect(readers.filter((r) => r.next !== 10_000 || r.wrong > 0)).toHaveLength(0);
    expect(server!.channels.count("soak")).toBe(MEMBERS - 1);
    expect(server!.channels.stats().dropped).toBe(1);
    console.log(`soak (close): stalled member closed after ${peak} bytes unsent at most`);
    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await within(stalled.closed, "the 1013 close", 15_000)).toEqual({ code: 1013, reason: "slow consumer" });
  }, 180_000);
});
