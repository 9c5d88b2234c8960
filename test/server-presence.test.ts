import fc from "fast-check";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { secretKey } from "../packages/server/src/server.js";
import { serverPerTest, upgrade, WsClient } from "./helpers.js";

const SECRET = "a-secret-of-at-least-thirty-two-bytes!!";
const fixture = serverPerTest({ port: 0, tcpPort: false, maxMessagesPerSecond: 10_000 });

const start = fixture.start;

async function client(query = ""): Promise<WsClient> {
  const c = await WsClient.open(`ws://127.0.0.1:${fixture.server.ws.port}/${query}`);
  return fixture.closeAfter(c);
}

type Entry = { ref: string; id: string | null; info?: unknown };
type Frame = Record<string, unknown>;

/** Applies one presence frame to `present` (ref -> entry), failing on a phantom or missing entry. */
function apply(frame: Frame, present: Map<string, Entry>): void {
  if (Array.isArray(frame.members)) {
    present.clear();
    for (const entry of frame.members as Entry[]) present.set(entry.ref, entry);
  }
  for (const entry of (frame.joins ?? []) as Entry[]) {
    expect(present.has(entry.ref), `a second join of ${entry.ref}`).toBe(false);
    present.set(entry.ref, entry);
  }
  for (const ref of (frame.leaves ?? []) as string[]) expect(present.delete(ref), `a leave of absent ${ref}`).toBe(true);
}

/** The refs the server holds for `channel` now. */
function refs(channel: string): Set<string> {
  return fixture.server.channels.reduce(channel, new Set<string>(), (set, { meta }) => set.add(meta?.ref ?? ""));
}

describe("presence over the WebSocket protocol", () => {
  it("a join with presence echoes its req; with history on, the position comes first, then the snapshot frame and diffs", async () => {
    await start();
    const a = await client("?id=ann");
    a.send({ join: "room", presence: "count", req: "r1" });
    expect(await a.next()).toMatchObject({ joined: "room", count: { connections: 1, users: 1 }, req: "r1" });
    await fixture.server.close();
    await start({ historySize: 10 });
    const b = await client("?id=bob");
    b.send({ join: "room", presence: true, req: 2 });
    const joined = (await b.next()) as { ref: string; epoch: string };
    expect(joined).toEqual({ joined: "room", ref: joined.ref, epoch: joined.epoch, offset: 0, req: 2 });
    expect(await b.next()).toEqual({ presence: "room", members: [{ ref: joined.ref, id: "bob" }] });
    b.send({ say: "one", to: "room" });
    expect(await b.next()).toEqual({ to: "room", say: "one", from: "bob", offset: 1, epoch: joined.epoch });
    const c = await client("?id=cat");
    c.send({ join: "room", presence: "count", recover: { offset: 0, epoch: joined.epoch } });
    const back = (await c.next()) as { ref: string };
    expect(back).toEqual({
      joined: "room",
      ref: back.ref,
      recovered: true,
      epoch: joined.epoch,
      offset: 1,
      missed: [{ say: "one", from: "bob", offset: 1 }],
    });
    expect(await c.next()).toEqual({ presence: "room", count: { connections: 2, users: 2 } });
    expect(await b.next()).toEqual({ presence: "room", joins: [{ ref: back.ref, id: "cat" }], leaves: [] });
  });

  it("a join with presence answers the snapshot, then diffs; a plain join is present too", async () => {
    await start();
    const [a, b] = [await client("?id=ann"), await client()];
    a.send({ join: "room", presence: true });
    const joined = (await a.next()) as { joined: string; ref: string; presence: Entry[] };
    expect(joined).toEqual({ joined: "room", ref: joined.ref, presence: [{ ref: joined.ref, id: "ann" }] });
    b.send({ join: "room" });
    expect(await b.next()).toEqual({ joined: "room" });
    const diff = (await a.next()) as { joins: Entry[] };
    expect(diff).toEqual({ presence: "room", joins: [{ ref: diff.joins[0]!.ref, id: null }], leaves: [] });
    expect(diff.joins[0]!.ref).not.toBe(joined.ref);
    b.send({ presence: "room" });
    expect(await b.next()).toEqual({ presence: "room", members: [joined.presence[0], diff.joins[0]] });
    b.send({ presence: "elsewhere" });
    expect(await b.next()).toEqual({ error: "not a member", presence: "elsewhere" });
    await b.close();
    expect(await a.next()).toEqual({ presence: "room", joins: [], leaves: [diff.joins[0]!.ref] });
    // a rejoin is a new membership with a new ref
    a.send({ leave: "room" });
    expect(await a.next()).toEqual({ left: "room" });
    a.send({ join: "room", presence: true });
    const again = (await a.next()) as { ref: string };
    expect(again.ref).not.toBe(joined.ref);
  });

  it("count listeners get the counts, then a count frame when they change", async () => {
    await start();
    const [a, b, c] = [await client("?id=ann"), await client("?id=bob"), await client("?id=cy")];
    a.send({ join: "room", presence: "count" });
    const joined = (await a.next()) as { ref: string };
    expect(joined).toEqual({ joined: "room", ref: joined.ref, count: { connections: 1, users: 1 } });
    b.send({ join: "room" });
    expect(await a.next()).toEqual({ presence: "room", count: { connections: 2, users: 2 } });
    c.send({ join: "room" });
    expect(await a.next()).toEqual({ presence: "room", count: { connections: 3, users: 3 } }); // a second later
  });

  it("above --presence-max full-list listeners get counts, then a members frame once under it", async () => {
    await start({ presenceMax: 2 });
    const [a, b, c] = [await client(), await client(), await client()];
    a.send({ join: "room", presence: true });
    const { ref } = (await a.next()) as { ref: string };
    b.send({ join: "room" });
    const { joins } = (await a.next()) as { joins: Entry[] };
    c.send({ join: "room" });
    expect(await a.next()).toEqual({ presence: "room", count: { connections: 3, users: 3 } });
    c.send({ leave: "room" });
    expect(await a.next()).toEqual({ presence: "room", members: [{ ref, id: null }, joins[0]] });
  });

  it("a herd of 10,000 joins in one turn is a handful of frames per listener", async () => {
    await start({ presenceMax: 20_000 });
    const listeners = await Promise.all([client(), client(), client()]);
    for (const [i, l] of listeners.entries()) {
      l.send({ join: "hall", presence: true });
      await l.next();
      for (const earlier of listeners.slice(0, i)) await earlier.next(); // the diff of its join
    }
    for (let i = 0; i < 10_000; i++) fixture.server.channels.join("hall", { send: () => undefined }, { id: `u${i}`, ref: `herd.${i}` });
    for (const l of listeners) {
      const present = new Map<string, Entry>();
      let frames = 0;
      while (present.size < 10_000) {
        // 10,000 entries of 1,000 a frame
        apply((await l.next()) as Frame, present);
        frames++;
      }
      expect(frames).toBe(10);
    }
  });

  it("the token's info claim is in the entries; a non-object or one over 1 KiB is HTTP 401", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    const key = new TextEncoder().encode(SECRET);
    const token = (info: unknown): Promise<string> =>
      new SignJWT({ info }).setProtectedHeader({ alg: "HS256" }).setSubject("ann").setExpirationTime("1h").sign(key);
    const a = await client(`?token=${await token({ name: "Ann" })}`);
    a.send({ join: "room", presence: true });
    const joined = (await a.next()) as { ref: string };
    expect(joined).toMatchObject({ presence: [{ ref: joined.ref, id: "ann", info: { name: "Ann" } }] });
    const url = `ws://127.0.0.1:${fixture.server.ws.port}/?token=`;
    expect((await upgrade(url + (await token("x".repeat(10))))).status).toBe(401);
    expect((await upgrade(url + (await token({ bio: "x".repeat(1100) })))).status).toBe(401);
  });

  it("snapshot then diffs give the presence at every moment, whatever joins and leaves race the join", async () => {
    await start();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ who: fc.nat(7), op: fc.constantFrom("join", "leave", "close", "listen") }), { maxLength: 40 }),
        async (steps) => {
          const channel = `race-${run++}`;
          const actors = await Promise.all(Array.from({ length: 8 }, () => client()));
          const listeners = await Promise.all([client(), client(), client()]);
          let listened = 0;
          for (const { who, op } of steps) {
            const actor = actors[who]!;
            if (op === "listen" && listened < listeners.length) listeners[listened++]!.send({ join: channel, presence: true });
            else if (op === "close") actor.ws.terminate();
            else if (actor.ws.readyState === actor.ws.OPEN) actor.send(op === "join" ? { join: channel } : { leave: channel });
          }
          while (listened < listeners.length) listeners[listened++]!.send({ join: channel, presence: true });
          const marker = await client();
          await new Promise((resolve) => setTimeout(resolve, 0));
          marker.send({ join: channel, presence: true });
          const { ref: end } = (await marker.next()) as { ref: string };
          const expected = refs(channel);
          for (const listener of listeners) {
            const joined = (await listener.next()) as { presence: Entry[] };
            const present = new Map(joined.presence.map((e) => [e.ref, e]));
            while (!present.has(end)) apply((await listener.next()) as Frame, present);
            expect(new Set(present.keys())).toEqual(expected);
          }
          await Promise.all([...actors, ...listeners, marker].map((c) => c.close()));
        },
      ),
      { numRuns: 15 },
    );
  });
});
