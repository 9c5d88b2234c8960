/**
 * The history conformance suite: the same cases against every place history lives (one process;
 * the CLI with `--workers 2`, where the primary keeps the rings; two servers on a real
 * redis-server). A backend starts two nodes (one process counts as both) with history on and
 * opens real WebSocket clients to either; a new place for history passes when
 * `historyConformance()` passes against it.
 */
import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { eventually, until, type WsClient } from "./helpers.js";

export type Delivery = { to: string; say: unknown; from?: string; offset: number; epoch: string };
export type Joined = {
  joined: string;
  epoch: string;
  offset: number;
  recovered?: boolean;
  missed?: { say: unknown; from?: string; offset: number }[];
};

/** The server options a case starts its nodes with. */
export interface HistoryCaseSettings {
  historySize: number;
  recoverMax?: number;
  historyTtl?: number;
  highWaterMark?: number;
}

/** Two nodes sharing one history, as the suite drives them. */
export interface HistoryBackend {
  /** Starts both nodes with history on and these settings (and a rate limit no case reaches). */
  start(settings: HistoryCaseSettings): Promise<void>;
  /** A client connected to node `node` (`?id=ID` with `id`): the same server twice for one process. */
  client(node: 0 | 1, id?: string): Promise<WsClient>;
  /**
   * What makes offsets restart, as it happens to this backend (a restarted process alone, a new
   * primary, a FLUSHALL). Clients open until then may be closed by it.
   */
  newEpoch(): Promise<void>;
  /** Broadcast messages slow consumers were not sent, on every node, as the nodes count them. */
  dropped(): Promise<number>;
  /** Stops what `start` started (after each case, once its clients are closed). */
  stop(): Promise<void>;
}

/** Joins `channel`, with `recover` if given. @returns the reply. */
export async function join(c: WsClient, channel: string, recover?: { offset: number; epoch: string }): Promise<Joined> {
  c.send(recover === undefined ? { join: channel } : { join: channel, recover });
  return (await c.next()) as Joined;
}

/** Joins `channel` with `recover`, past whatever `c` has received and not read yet. @returns the reply. */
export async function rejoin(c: WsClient, channel: string, recover: { offset: number; epoch: string }): Promise<Joined> {
  c.send({ join: channel, recover });
  for (let i = 0; i < 100_000; i++) {
    const m = (await c.next()) as Joined;
    if (m.joined === channel) return m;
  }
  throw new Error("no joined reply");
}

/** Says `first`..`last` (as `say`) to `channel` from `c`, a member, and waits for its own copy of the last. */
export async function say(c: WsClient, channel: string, first: number, last: number): Promise<void> {
  for (let i = first; i <= last; i++) c.send({ say: i, to: channel });
  while (((await c.next()) as Delivery).say !== last);
}

/** 1, 2, ... `last` after `from`: the offsets `from`+1..`last`. */
export const range = (from: number, last: number): number[] => Array.from({ length: Math.max(0, last - from) }, (_, i) => from + 1 + i);

/**
 * Registers the suite. Call at the top level of a test file.
 * @param timeoutMs each case's bound: processes start slower than servers in this one.
 */
export function historyConformance(name: string, backend: HistoryBackend, timeoutMs = 30_000): void {
  const clients: WsClient[] = [];
  const client = async (node: 0 | 1, id?: string): Promise<WsClient> => {
    const c = await backend.client(node, id);
    clients.push(c);
    return c;
  };

  describe(`history conformance: ${name}`, () => {
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await backend.stop();
    }, 30_000);

    it(
      "a join on either node answers the same position; says from both share one sequence of offsets",
      async () => {
        await backend.start({ historySize: 100 });
        const a = await client(0, "ann");
        const b = await client(1, "bob");
        const ja = await join(a, "room");
        expect(ja).toEqual({ joined: "room", epoch: expect.any(String), offset: 0 });
        expect(await join(b, "room")).toEqual({ joined: "room", epoch: ja.epoch, offset: 0 });
        a.send({ say: { text: "hi" }, to: "room" });
        expect(await b.next()).toEqual({ to: "room", say: { text: "hi" }, from: "ann", offset: 1, epoch: ja.epoch });
        b.send({ say: 2, to: "room" });
        expect(await a.next()).toEqual({ to: "room", say: { text: "hi" }, from: "ann", offset: 1, epoch: ja.epoch });
        expect(await a.next()).toEqual({ to: "room", say: 2, from: "bob", offset: 2, epoch: ja.epoch });
        expect(await b.next()).toEqual({ to: "room", say: 2, from: "bob", offset: 2, epoch: ja.epoch });
        const c = await client(0);
        expect(await join(c, "room")).toEqual({ joined: "room", epoch: ja.epoch, offset: 2 });
      },
      timeoutMs,
    );

    it(
      "50 clients recovering on the other node while a publisher keeps going: every say once, in order",
      async () => {
        await backend.start({ historySize: 1000 });
        const total = 300;
        const publisher = await client(0, "pub");
        const { epoch } = await join(publisher, "live");
        const readers = await Promise.all(Array.from({ length: 50 }, (_, i) => client((i % 2) as 0 | 1)));
        for (const r of readers) expect(await join(r, "live")).toEqual({ joined: "live", epoch, offset: 0 });
        const publishing = (async () => {
          for (let i = 1; i <= total; i += 10) await say(publisher, "live", i, i + 9);
        })();
        const seen = await Promise.all(
          readers.map(async (first, i) => {
            const offsets: number[] = [];
            // each reader drops off at another point of the stream, and comes back on the other node
            while (offsets.length < 5 + i * 5) offsets.push(((await first.next()) as Delivery).offset);
            await first.close();
            const again = await client(((i + 1) % 2) as 0 | 1);
            const got = await join(again, "live", { offset: offsets.at(-1) ?? 0, epoch });
            expect(got).toMatchObject({ joined: "live", recovered: true, epoch });
            for (const m of got.missed ?? []) {
              expect(m).toEqual({ say: m.offset, from: "pub", offset: m.offset });
              offsets.push(m.offset);
            }
            expect(offsets.at(-1)).toBe(got.offset);
            while ((offsets.at(-1) ?? 0) < total) offsets.push(((await again.next()) as Delivery).offset);
            return offsets;
          }),
        );
        await publishing;
        for (const offsets of seen) expect(offsets).toEqual(range(0, total));
      },
      timeoutMs * 2,
    );

    it(
      "a client that never received a say recovers on the other node from its joined position, and nothing twice",
      async () => {
        await backend.start({ historySize: 100 });
        const a = await client(0);
        const { epoch, offset } = await join(a, "room");
        expect(offset).toBe(0);
        await a.close();
        const b = await client(1, "bob");
        await join(b, "room");
        await say(b, "room", 1, 3);
        const back = await client(1);
        expect(await join(back, "room", { offset, epoch })).toEqual({
          joined: "room",
          recovered: true,
          epoch,
          offset: 3,
          missed: [1, 2, 3].map((n) => ({ say: n, from: "bob", offset: n })),
        });
        b.send({ say: 4, to: "room" });
        expect(await back.next()).toEqual({ to: "room", say: 4, from: "bob", offset: 4, epoch });
        // recovering again from what it has replays nothing (socket.io#5419)
        expect(await join(back, "room", { offset: 4, epoch })).toEqual({ joined: "room", recovered: true, epoch, offset: 4, missed: [] });
        b.send({ say: 5, to: "room" });
        expect(await back.next()).toEqual({ to: "room", say: 5, from: "bob", offset: 5, epoch });
      },
      timeoutMs,
    );

    it(
      "a new epoch (offsets restart): recovered false, never a wrong offset",
      async () => {
        await backend.start({ historySize: 100 });
        const a = await client(0);
        const { epoch } = await join(a, "room");
        await say(a, "room", 1, 5);
        await a.close();
        await backend.newEpoch();
        const b = await client(1);
        const got = await join(b, "room", { offset: 3, epoch });
        expect(got).toEqual({ joined: "room", recovered: false, epoch: expect.any(String), offset: 0 });
        expect(got.epoch).not.toBe(epoch);
        const c = await client(0, "cy");
        expect(await join(c, "room")).toEqual({ joined: "room", epoch: got.epoch, offset: 0 });
        c.send({ say: "after", to: "room" });
        expect(await b.next()).toEqual({ to: "room", say: "after", from: "cy", offset: 1, epoch: got.epoch });
      },
      timeoutMs * 2,
    );

    it(
      "trimmed history, another epoch, an offset past the newest: recovered false with the position",
      async () => {
        await backend.start({ historySize: 10, recoverMax: 1000 });
        const a = await client(0);
        const { epoch } = await join(a, "room");
        for (let i = 1; i <= 300; i += 50) await say(a, "room", i, i + 49); // Redis trims approximately: far past 10
        const b = await client(1);
        const refused = { joined: "room", recovered: false, epoch, offset: 300 };
        expect(await join(b, "room", { offset: 0, epoch })).toEqual(refused);
        expect(await join(b, "room", { offset: 295, epoch: "another" })).toEqual(refused);
        expect(await join(b, "room", { offset: 301, epoch })).toEqual(refused);
        const recent = await join(b, "room", { offset: 295, epoch });
        expect(recent).toMatchObject({ recovered: true, offset: 300 });
        expect(recent.missed?.map((m) => m.offset)).toEqual([296, 297, 298, 299, 300]);
        a.send({ say: 301, to: "room" });
        expect(await b.next()).toMatchObject({ say: 301, offset: 301 }); // a member already: nothing twice
      },
      timeoutMs,
    );

    it(
      "expired history (historyTtl): recovered false, and the next say follows the position it answered",
      async () => {
        await backend.start({ historySize: 100, historyTtl: 1 });
        const a = await client(0);
        const { epoch } = await join(a, "room");
        await say(a, "room", 1, 2);
        const b = await client(1);
        let got: Joined | undefined;
        const expired = async (): Promise<boolean> => {
          got = await join(b, "room", { offset: 1, epoch });
          return got.recovered === false;
        };
        await until(expired, "the history to expire", 10_000);
        const answer = got as Joined;
        // a new epoch from 0, or (Redis: the says' stream expired, not the channel's position) the same epoch at 2
        if (answer.epoch === epoch) expect(answer).toEqual({ joined: "room", recovered: false, epoch, offset: 2 });
        else expect(answer).toEqual({ joined: "room", recovered: false, epoch: expect.any(String), offset: 0 });
        a.send({ say: "next", to: "room" });
        expect(await b.next()).toEqual({ to: "room", say: "next", offset: answer.offset + 1, epoch: answer.epoch });
      },
      timeoutMs,
    );

    it(
      "more than recoverMax missed: recovered false; exactly recoverMax: recovered",
      async () => {
        await backend.start({ historySize: 100, recoverMax: 5 });
        const a = await client(0);
        const { epoch } = await join(a, "room");
        await say(a, "room", 1, 20);
        const b = await client(1);
        expect(await join(b, "room", { offset: 14, epoch })).toEqual({ joined: "room", recovered: false, epoch, offset: 20 });
        const got = await join(b, "room", { offset: 15, epoch });
        expect(got.missed?.map((m) => m.offset)).toEqual(range(15, 20));
      },
      timeoutMs,
    );

    it(
      "a skipped slow consumer recovers exactly the range it was not sent",
      async () => {
        await backend.start({ historySize: 2000, highWaterMark: 16 * 1024 });
        const slow = await client(1);
        const { epoch } = await join(slow, "room");
        const publisher = await client(0);
        await join(publisher, "room");
        const socket = (slow.ws as WebSocket & { _socket: { pause(): void; resume(): void } })._socket;
        socket.pause();
        const big = "x".repeat(32 * 1024);
        let sent = 0;
        // until the slow-consumer rule skips it: one at a time, so that the publisher reads each before
        // the next (in a batch it would be a slow consumer too), and a look at the count every 10
        while ((await backend.dropped()) === 0 && sent < 1500) {
          for (let i = 0; i < 10; i++) {
            publisher.send({ say: big, to: "room" });
            sent++;
            while (((await publisher.next()) as Delivery).offset !== sent);
          }
        }
        expect(await backend.dropped()).toBeGreaterThan(0);
        socket.resume();
        // once it reads again the rule lets says through: one marker at a time until one arrives
        const arrived = (): number => Math.max(0, ...slow.received.map((m) => (m as Delivery).offset ?? 0));
        for (let tries = 0; arrived() < sent && tries < 50; tries++) {
          publisher.send({ say: "marker", to: "room" });
          sent++;
          while (((await publisher.next()) as Delivery).offset !== sent);
          await eventually(() => arrived() === sent, "the marker", 1000).catch(() => undefined);
        }
        await eventually(() => arrived() === sent, "a marker to reach the slow consumer");
        const offsets = slow.received.slice(1).map((m) => (m as Delivery).offset);
        let contiguous = 0;
        while (offsets[contiguous] === contiguous + 1) contiguous++;
        expect(contiguous).toBeLessThan(sent); // it did miss some
        const got = await rejoin(slow, "room", { offset: contiguous, epoch });
        expect(got).toMatchObject({ joined: "room", recovered: true, epoch, offset: sent });
        expect(got.missed?.map((m) => m.offset)).toEqual(range(contiguous, sent));
      },
      timeoutMs * 2,
    );
  });
}
