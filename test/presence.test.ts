import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import {
  type ChannelId,
  Channels,
  MAX_FRAME_ENTRIES,
  Presence,
  type PresenceDiff,
  type PresenceFrames,
} from "../packages/ws-channels/src/index.js";
import { type Cleanups, type WsClient, wsPairs } from "./helpers.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A member that records nothing: presence is read from its meta. */
class Member {
  bufferedAmount = 0;
  constructor(readonly name: string) {}
  send(): void {}
}

type Entry = { ref: string; user: string };
type Meta = { ref: string; user: string };
type AnyMember = Member | WebSocket;

const frames: PresenceFrames<Entry> = {
  diff: (channel, { joins, leaves }) => JSON.stringify({ presence: channel, joins, leaves: leaves.map((e) => e.ref) }),
  count: (channel, count) => JSON.stringify({ presence: channel, count }),
  members: (channel, members) => JSON.stringify({ presence: channel, members }),
};

function setup(options: { max?: number; countInterval?: number } = {}) {
  const channels = new Channels<Meta, AnyMember>();
  let entries = 0;
  const presence = new Presence(channels, {
    entry: (_member, meta: Meta): Entry => {
      entries++;
      return { ref: meta.ref, user: meta.user };
    },
    user: (entry) => entry.user,
    frames,
    ...options,
  });
  cleanups.push(() => presence.close());
  return { channels, presence, entriesBuilt: () => entries };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
let refs = 0;
const meta = (user: string): Meta => ({ ref: `r${++refs}`, user });

/** Applies a client's presence frames to its snapshot: the refs it believes are present. */
function apply(frame: Record<string, unknown>, present: Map<string, Entry>): void {
  if (Array.isArray(frame.members)) {
    present.clear();
    for (const entry of frame.members as Entry[]) present.set(entry.ref, entry);
  }
  for (const entry of (frame.joins ?? []) as Entry[]) {
    expect(present.has(entry.ref), `join of ${entry.ref}, already present`).toBe(false);
    present.set(entry.ref, entry);
  }
  for (const ref of (frame.leaves ?? []) as string[]) {
    expect(present.delete(ref), `leave of ${ref}, not present`).toBe(true);
  }
}

describe("Presence: entries and diffs gathered per turn", () => {
  it("tells a watcher one diff per turn; a join and a leave of one member in a turn cancel", async () => {
    const { channels, presence } = setup();
    const diffs: PresenceDiff<Entry>[] = [];
    presence.watch("room", (diff) => diffs.push(diff));
    const [a, b, c] = [new Member("a"), new Member("b"), new Member("c")];
    const [ma, mb, mc] = [meta("ann"), meta("bob"), meta("cy")];
    channels.join("room", a, ma);
    channels.join("room", b, mb);
    channels.join("other", c, mc); // another channel: not told
    expect(diffs).toEqual([]); // told at the end of the turn, not during it
    await turn();
    expect(diffs).toEqual([{ joins: [ma, mb], leaves: [] }]);
    channels.join("room", c, mc);
    channels.leave("room", c); // joined and left in one turn: nothing
    channels.leave("room", a);
    const a2 = meta("ann");
    channels.join("room", a, a2); // left and joined again: a leave of the old entry, a join of the new
    await turn();
    expect(diffs[1]).toEqual({ joins: [a2], leaves: [ma] });
    channels.leave("room", b);
    channels.join("room", b, meta("bob"));
    channels.leave("room", b); // back to before the turn's join: a leave of the entry it had
    await turn();
    expect(diffs[2]).toEqual({ joins: [], leaves: [mb] });
    expect(presence.entries("room")).toEqual([a2]);
    expect(presence.count("room")).toEqual({ connections: 1, users: 1 });
  });

  it("costs nothing without a listener: entries are built only while someone listens", async () => {
    const { channels, presence, entriesBuilt } = setup();
    for (let i = 0; i < 100; i++) channels.join("room", new Member(String(i)), meta("u"));
    expect(entriesBuilt()).toBe(0);
    const stop = presence.watch("room", () => undefined);
    channels.join("room", new Member("x"), meta("u"));
    expect(entriesBuilt()).toBe(1);
    stop();
    channels.join("room", new Member("y"), meta("u"));
    expect(entriesBuilt()).toBe(1);
  });

  it("rejects bad arguments with errors that name them", () => {
    const channels = new Channels<Meta>();
    expect(() => new Presence({} as Channels<Meta>, { entry: () => 1, frames: frames as never })).toThrow(/channels must be a Channels/);
    expect(() => new Presence(channels, { entry: 1 as never, frames })).toThrow(TypeError);
    expect(() => new Presence(channels, { entry: () => 1, frames: {} as never })).toThrow(/frames\.diff/);
    expect(() => new Presence(channels, { entry: () => 1, frames: frames as never, max: -1 })).toThrow(RangeError);
    const presence = new Presence(channels, { entry: () => 1, frames: frames as never });
    expect(() => presence.watch("x", 3 as never)).toThrow(TypeError);
    expect(() => presence.entries({} as ChannelId)).toThrow(TypeError);
  });
  it("refresh gives full listeners a members frame with the turn's changes folded in, count listeners the counts even unchanged", async () => {
    const { channels, presence } = setup({ countInterval: 0 });
    const { server, clients } = await wsPairs(2, cleanups);
    const [full, counted] = server as [WebSocket, WebSocket];
    const [fullClient, countClient] = clients as [WsClient, WsClient];
    const a = meta("ann");
    channels.join("room", new Member("a"), a);
    await presence.listen("room", full, "full", (s) => JSON.stringify({ snapshot: s }));
    await presence.listen("room", counted, "count", (s) => JSON.stringify({ snapshot: s }));
    expect(await fullClient.next()).toEqual({ snapshot: { entries: [a] } });
    expect(await countClient.next()).toEqual({ snapshot: { count: { connections: 1, users: 1 } } });
    const diffs: PresenceDiff<Entry>[] = [];
    presence.watch("room", (diff) => diffs.push(diff));
    const b = meta("bob");
    channels.join("room", new Member("b"), b);
    presence.refresh("room"); // in the same turn as the join: no diff frame, the members frame holds it
    expect(diffs).toEqual([{ joins: [b], leaves: [] }]);
    expect(await fullClient.next()).toEqual({ presence: "room", members: [a, b] });
    expect(await countClient.next()).toEqual({ presence: "room", count: { connections: 2, users: 2 } });
    presence.refresh("room"); // nothing changed: the members again, and the counts though the same
    expect(await fullClient.next()).toEqual({ presence: "room", members: [a, b] });
    expect(await countClient.next()).toEqual({ presence: "room", count: { connections: 2, users: 2 } });
    await turn();
    presence.refresh("nobody-listens"); // nothing to do
    expect(() => presence.refresh({} as ChannelId)).toThrow(TypeError);
    expect(fullClient.received).toHaveLength(3);
  });
});

describe("Presence: listeners on real sockets", () => {
  it("a herd of 10,000 joins in one turn is a handful of frames per listener", async () => {
    const { channels, presence } = setup({ max: 20_000 });
    const { server, clients } = await wsPairs(3, cleanups);
    for (const ws of server) await presence.listen("hall", ws, "full", (s) => JSON.stringify({ snapshot: s }));
    for (let i = 0; i < 10_000; i++) channels.join("hall", new Member(String(i)), meta(`u${i % 5000}`));
    for (const client of clients) {
      expect(await client.next()).toEqual({ snapshot: { entries: [] } });
      const present = new Map<string, Entry>();
      let frames = 0;
      while (present.size < 10_000) {
        const frame = (await client.next()) as Record<string, unknown>;
        expect((frame.joins as unknown[]).length).toBeLessThanOrEqual(MAX_FRAME_ENTRIES);
        apply(frame, present);
        frames++;
      }
      expect(frames).toBe(10);
    }
  });

  it("count listeners get the counts when they change, at most once per interval", async () => {
    const { channels, presence } = setup({ countInterval: 200 });
    const { server, clients } = await wsPairs(1, cleanups);
    const [client] = clients as [WsClient];
    channels.join("room", new Member("a"), meta("ann"));
    expect(await presence.listen("room", server[0]!, "count")).toEqual({ count: { connections: 1, users: 1 } });
    const started = Date.now();
    channels.join("room", new Member("b"), meta("ann"));
    await turn();
    channels.join("room", new Member("c"), meta("cy"));
    expect(await client.next()).toEqual({ presence: "room", count: { connections: 2, users: 1 } });
    expect(await client.next()).toEqual({ presence: "room", count: { connections: 3, users: 2 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it("over max, full-list listeners get counts; back under it, a members frame", async () => {
    const { channels, presence } = setup({ max: 2, countInterval: 0 });
    const { server, clients } = await wsPairs(1, cleanups);
    const [client] = clients as [WsClient];
    await presence.listen("room", server[0]!, "full", (s) => JSON.stringify(s));
    expect(await client.next()).toEqual({ entries: [] });
    const members = [new Member("a"), new Member("b"), new Member("c")];
    const metas = members.map(() => meta("u"));
    channels.join("room", members[0]!, metas[0]!);
    expect(await client.next()).toEqual({ presence: "room", joins: [metas[0]], leaves: [] });
    channels.join("room", members[1]!, metas[1]!);
    await client.next();
    channels.join("room", members[2]!, metas[2]!);
    expect(await client.next()).toEqual({ presence: "room", count: { connections: 3, users: 1 } });
    channels.leave("room", members[2]!);
    expect(await client.next()).toEqual({ presence: "room", members: [metas[0], metas[1]] });
  });

  it("a snapshot and the diffs after it give the presence at every moment, whatever races the listen", async () => {
    const { server, clients } = await wsPairs(4, cleanups);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ op: fc.nat(9), who: fc.nat(11), waits: fc.boolean() }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.nat(59), { minLength: 4, maxLength: 4 }),
        async (steps, listenAt) => {
          const { channels, presence } = setup();
          const members = Array.from({ length: 12 }, (_, i) => new Member(String(i)));
          const listening: Promise<unknown>[] = [];
          for (const [i, step] of steps.entries()) {
            for (const [l, at] of listenAt.entries()) {
              if (at === i) listening.push(presence.listen("room", server[l]!, "full", (s) => JSON.stringify(s)));
            }
            const member = members[step.who]!;
            if (step.op < 6) channels.join("room", member, meta("u"));
            else channels.leave("room", member);
            if (step.waits) await turn();
          }
          for (const [l, at] of listenAt.entries()) {
            if (at >= steps.length) listening.push(presence.listen("room", server[l]!, "full", (s) => JSON.stringify(s)));
          }
          await Promise.all(listening);
          // a last join marks the end: every frame before it has been applied once it is seen
          const end = meta("end");
          channels.join("room", new Member("end"), end);
          const expected = new Set(presence.entries("room").map((e) => e.ref));
          for (const client of clients) {
            const snapshot = (await client.next()) as { entries: Entry[] };
            const present = new Map(snapshot.entries.map((e) => [e.ref, e]));
            while (!present.has(end.ref)) apply((await client.next()) as Record<string, unknown>, present);
            expect(new Set(present.keys())).toEqual(expected);
          }
          for (const ws of server) presence.unlisten("room", ws);
          await presence.close();
        },
      ),
      { numRuns: 40 },
    );
  });
});
