import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { eventually, within } from "./helpers.js";

const TOTAL = 20_000;
const WAVE = 500;
const CHANNELS = ["lobby", "news", "chat"];

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, tcpPort: 0, maxConnectionsPerIp: 1_000_000 });
});
afterAll(() => server.close());

const gc = (globalThis as { gc?: () => void }).gc;
function heapAfterGc(): number {
  if (gc === undefined) throw new Error("run with --expose-gc (vitest.config.ts passes it)");
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Opens one client with an id, joins every channel, waits for the three replies. */
async function joinedClient(n: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.ws.port}/?id=c${n}`);
  ws.on("error", () => undefined);
  await once(ws, "open");
  let replies = 0;
  const joined = new Promise<void>((resolve) => ws.on("message", () => ++replies === CHANNELS.length && resolve()));
  for (const channel of CHANNELS) ws.send(JSON.stringify({ join: channel }));
  await joined;
  return ws;
}

/** Drops a client: every third abruptly (no close frame), the rest with a clean close. */
async function drop(ws: WebSocket, n: number): Promise<void> {
  const closed = once(ws, "close");
  if (n % 3 === 0) ws.terminate();
  else ws.close();
  await closed;
}

describe("churn: 20,000 connections come and go", () => {
  it("leaves the table, the reverse index and the id registry exactly as they were, and the heap within 8 MiB", async () => {
    // One small wave first, so that lazily built things (JIT code, pools) are not counted as growth.
    await Promise.all(Array.from({ length: 50 }, (_, i) => joinedClient(-1 - i).then((ws) => drop(ws, i))));
    await eventually(() => server.connections().connections === 0, "the warm-up wave to go", 30_000);
    const before = { table: server.channels.stats(), clients: server.connections(), heap: heapAfterGc() };

    for (let start = 0; start < TOTAL; start += WAVE) {
      const wave = await within(
        Promise.all(Array.from({ length: WAVE }, (_, i) => joinedClient(start + i))),
        `wave ${start / WAVE}`,
        30_000,
      );
      expect(server.channels.count("lobby")).toBe(WAVE);
      await within(Promise.all(wave.map((ws, i) => drop(ws, start + i))), `wave ${start / WAVE} to close`, 30_000);
    }
    await eventually(
      () => server.connections().connections === 0 && server.channels.stats().memberships === 0,
      "every connection to go",
      60_000,
    );

    const after = { table: server.channels.stats(), clients: server.connections(), heap: heapAfterGc() };
    for (const channel of CHANNELS) expect(server.channels.count(channel)).toBe(0);
    expect(after.table).toEqual(before.table);
    expect(after.clients).toEqual(before.clients);
    const growth = after.heap - before.heap;
    console.log(
      `churn: ${TOTAL} connections, heap ${(before.heap / 2 ** 20).toFixed(1)} -> ${(after.heap / 2 ** 20).toFixed(1)} MiB (${(growth / 2 ** 20).toFixed(2)} MiB)`,
    );
    expect(growth).toBeLessThan(8 * 2 ** 20);
  }, 240_000);
});
