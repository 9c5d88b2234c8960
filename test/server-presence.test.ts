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
});
