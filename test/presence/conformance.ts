/**
 * The presence conformance suite: the same cases against every backend of the server (one
 * process, the CLI's `--workers 2`, two servers on a real redis-server), as test/brokers/ does
 * for brokers. A setup gives two nodes to open real WebSocket clients on (one process: the same
 * server twice); the suite checks what listeners get against what a member reads back
 * (`{"presence": CH}`: the backend's own record) once everything has settled.
 */
import type { Socket } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { until, type WsClient } from "../helpers.js";

export type Entry = { ref: string; id: string | null; info?: unknown };
export type Frame = Record<string, unknown>;

/** Where clients connect: node 0 or 1, or either (`undefined`: wherever the backend puts them, cheaper on workers). */
export type NodeChoice = 0 | 1 | undefined;

export interface PresenceSetup {
  /** A real client on `node`, with `query` (`?id=...`) in its URL. */
  open(node: NodeChoice, query?: string): Promise<WsClient>;
  /** fast-check runs of the race case. */
  readonly raceRuns: number;
}

/** A listener's list, as a client keeps it: snapshot, diffs and fresh `members` frames applied in order. */
export class PresenceView {
  readonly present = new Map<string, Entry>();
  /** How many diff frames (joins and leaves) were applied. */
  diffs = 0;
  /** The `partial` of the last snapshot (a joined reply or a `members` frame). */
  partial = false;
  #seen = 0;

  constructor(readonly client: WsClient) {}

  /** Applies every frame received since the last call; fails on a second join of a ref or a leave of an absent one. */
  catchUp(): this {
    const frames = this.client.received as Frame[];
    for (const frame of frames.slice(this.#seen)) this.apply(frame);
    this.#seen = frames.length;
    return this;
  }

  apply(frame: Frame): void {
    const snapshot = Array.isArray(frame.members) ? frame.members : frame.joined !== undefined ? frame.presence : undefined;
    if (Array.isArray(snapshot)) {
      this.present.clear();
      for (const entry of snapshot as Entry[]) this.present.set(entry.ref, entry);
      this.partial = frame.partial === true;
    }
    if (frame.joined !== undefined && frame.count !== undefined) this.partial = frame.partial === true;
    if (!Array.isArray(frame.joins)) return;
    this.diffs++;
    for (const entry of frame.joins as Entry[]) {
      expect(this.present.has(entry.ref), `a second join of ${entry.ref}`).toBe(false);
      this.present.set(entry.ref, entry);
    }
    for (const ref of (frame.leaves ?? []) as string[]) expect(this.present.delete(ref), `a leave of absent ${ref}`).toBe(true);
  }

  refs(): string[] {
    return [...this.catchUp().present.keys()].sort();
  }

  ids(): (string | null)[] {
    return [...this.catchUp().present.values()].map((e) => e.id).sort();
  }
}

/** Joins `channel` with presence (`true` or `"count"`) and waits for the joined reply. */
export async function listen(client: WsClient, channel: string, presence: true | "count" = true): Promise<Frame> {
  client.send({ join: channel, presence });
  const joined = (await client.next()) as Frame;
  expect(joined.joined).toBe(channel);
  return joined;
}

/** What a member reads back with `{"presence": CH}`: the refs, sorted. The member must get no other frame meanwhile. */
export async function readBack(member: WsClient, channel: string): Promise<string[]> {
  member.send({ presence: channel });
  const { members } = (await member.next()) as { members: Entry[] };
  return members.map((e) => e.ref).sort();
}

/** Waits until every view's list is what `reader` reads back (read again each time), at most `ms`. */
export async function converged(views: PresenceView[], reader: WsClient, channel: string, ms = 10_000): Promise<string[]> {
  let truth: string[] = [];
  await until(
    async () => {
      truth = await readBack(reader, channel);
      return views.every((view) => view.refs().join() === truth.join());
    },
    `every listener's list of ${channel} to be what a member reads back`,
    ms,
  );
  return truth;
}

/** Sends `messages` in one write of the socket, so the server reads them in one turn. */
export function sendTogether(client: WsClient, ...messages: unknown[]): void {
  const socket = (client.ws as unknown as { _socket: Socket })._socket;
  socket.cork();
  for (const message of messages) client.send(message);
  socket.uncork();
}

let next = 0;
/** A channel name no other case uses. */
export const fresh = (what: string): string => `${what}-${next++}`;

/**
 * Registers the suite. `setup()` is called in each case (the file makes it in `beforeAll`); the
 * clients opened through `track` are closed after each case.
 */
export function presenceConformance(name: string, setup: () => PresenceSetup): void {
  const opened: WsClient[] = [];
  const open = async (node: NodeChoice, query = ""): Promise<WsClient> => {
    const client = await setup().open(node, query);
    opened.push(client);
    return client;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  describe(`presence conformance: ${name}`, () => {
    it("snapshot then diffs on both nodes; reads; a plain join is present; a leave crosses", async () => {
      const room = fresh("room");
      const [annId, bobId, cyId] = ["ann", "bob", "cy"].map((id) => `${id}-${room}`);
      const ann = await open(0, `?id=${annId}`);
      const first = await listen(ann, room);
      expect(first.presence).toEqual([{ ref: first.ref, id: annId }]);
      const bob = await open(1, `?id=${bobId}`);
      const second = await listen(bob, room);
      expect([...(second.presence as Entry[])].sort((a, b) => String(a.id).localeCompare(String(b.id)))).toEqual([
        { ref: first.ref, id: annId },
        { ref: second.ref, id: bobId },
      ]);
      expect(second.partial).toBeUndefined();
      expect(await ann.next()).toEqual({ presence: room, joins: [{ ref: second.ref, id: bobId }], leaves: [] });
      expect(await readBack(ann, room)).toEqual([first.ref, second.ref].sort());
      expect(await readBack(bob, room)).toEqual([first.ref, second.ref].sort());
      bob.send({ presence: "elsewhere" });
      expect(await bob.next()).toEqual({ error: "not a member", presence: "elsewhere" });
      // present without listening, on node 1: both listeners get its join, then its leave
      const cy = await open(1, `?id=${cyId}`);
      cy.send({ join: room });
      expect(await cy.next()).toEqual({ joined: room });
      const joined = (await ann.next()) as { joins: Entry[] };
      expect(joined).toMatchObject({ presence: room, joins: [{ id: cyId }], leaves: [] });
      expect(await bob.next()).toEqual(joined);
      await cy.close();
      const left = { presence: room, joins: [], leaves: [joined.joins[0]?.ref] };
      expect(await ann.next()).toEqual(left);
      expect(await bob.next()).toEqual(left);
      // a rejoin is a new membership with a new ref
      bob.send({ leave: room });
      expect(await bob.next()).toEqual({ left: room });
      expect(((await ann.next()) as Frame).leaves).toEqual([second.ref]);
      expect((await listen(bob, room)).ref).not.toBe(second.ref);
    });

    it("a herd of 2,000 joins on both nodes reaches a listener on each as a handful of diffs, applied exactly", async () => {
      const hall = fresh("hall");
      const views = [new PresenceView(await open(0)), new PresenceView(await open(1))];
      for (const view of views) await listen(view.client, hall);
      const herd: WsClient[] = [];
      for (let batch = 0; batch < 10; batch++) herd.push(...(await Promise.all(Array.from({ length: 200 }, () => open(undefined)))));
      for (const h of herd) h.send({ join: hall });
      await Promise.all(herd.map((h) => h.next()));
      const truth = await converged(views, herd[0] as WsClient, hall, 20_000);
      expect(truth).toHaveLength(2002);
      for (const view of views) {
        expect(view.partial).toBe(false);
        // the other listener's join, then the herd: never one frame per join
        expect(view.diffs).toBeLessThanOrEqual(100);
      }
    }, 90_000);

    it("200 connections joining with presence at once all end with the same entries", async () => {
      // many listens in flight at once: on workers, a snapshot and the diffs after it arrive in one read
      const crowd = fresh("crowd");
      const views: PresenceView[] = [];
      for (let batch = 0; batch < 2; batch++)
        views.push(...(await Promise.all(Array.from({ length: 100 }, async () => new PresenceView(await open(undefined))))));
      for (const view of views) view.client.send({ join: crowd, presence: true });
      const marker = await open(0);
      marker.send({ join: crowd });
      await marker.next();
      const truth = await converged(views, marker, crowd, 20_000);
      expect(truth).toHaveLength(201);
    }, 60_000);

    it("a join and a leave in one turn cancel: listeners on both nodes never see them", async () => {
      const quick = fresh("quick");
      const views = [new PresenceView(await open(0)), new PresenceView(await open(1))];
      for (const view of views) await listen(view.client, quick);
      const churn = await Promise.all(Array.from({ length: 10 }, (_, i) => open((i % 2) as 0 | 1)));
      for (const c of churn) sendTogether(c, { join: quick }, { leave: quick });
      for (const c of churn) expect([await c.next(), await c.next()]).toEqual([{ joined: quick }, { left: quick }]);
      const marker = await open(0);
      marker.send({ join: quick });
      await marker.next();
      await converged(views, marker, quick);
      for (const view of views)
        for (const frame of view.client.received.slice(1) as Frame[])
          expect(frame, "only the other listener's join and the marker's").toMatchObject({ joins: [{}], leaves: [] });
    });

    it("count listeners get the counts, then new counts as members come and go on either node", async () => {
      const counted = fresh("counted");
      const a = await open(0, `?id=a-${counted}`);
      expect(await listen(a, counted, "count")).toMatchObject({ count: { connections: 1, users: 1 } });
      const b = await open(1, `?id=b-${counted}`);
      expect(await listen(b, counted, "count")).toMatchObject({ count: { connections: 2, users: 2 } });
      const others = [await open(1, `?id=c-${counted}`), await open(0), await open(1)];
      for (const o of others) {
        o.send({ join: counted });
        await o.next();
      }
      const last = (c: WsClient): unknown => (c.received as Frame[]).filter((f) => f.presence === counted).at(-1)?.count;
      for (const c of [a, b]) await until(async () => JSON.stringify(last(c)) === '{"connections":5,"users":5}', "5 and 5", 8000);
      await others[0]?.close();
      for (const c of [a, b]) await until(async () => JSON.stringify(last(c)) === '{"connections":4,"users":4}', "4 and 4", 8000);
      for (const c of [a, b]) expect((c.received as Frame[]).every((f) => f.joins === undefined && f.members === undefined)).toBe(true);
    });

    it("randomized races: snapshot then diffs give what a member reads back, whatever joins, leaves and closes race the listens", async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ who: fc.nat(7), op: fc.constantFrom("join", "leave", "close", "listen") }), { maxLength: 40 }),
          async (steps) => {
            const channel = `race-${name.length}-${run++}`;
            const actors = await Promise.all(Array.from({ length: 8 }, (_, i) => open((i % 2) as 0 | 1)));
            const listeners = await Promise.all([open(0), open(1), open(0)]);
            let listened = 0;
            for (const { who, op } of steps) {
              const actor = actors[who] as WsClient;
              if (op === "listen" && listened < listeners.length) listeners[listened++]?.send({ join: channel, presence: true });
              else if (op === "close") actor.ws.terminate();
              else if (actor.ws.readyState === actor.ws.OPEN) actor.send(op === "join" ? { join: channel } : { leave: channel });
            }
            while (listened < listeners.length) listeners[listened++]?.send({ join: channel, presence: true });
            const marker = await open(1);
            marker.send({ join: channel });
            await marker.next();
            await converged(
              listeners.map((l) => new PresenceView(l)),
              marker,
              channel,
            );
            await Promise.all([...actors, ...listeners, marker].map((c) => c.close()));
          },
        ),
        { numRuns: setup().raceRuns, endOnFailure: true }, // a failure is reported as found: shrinking it would take minutes
      );
    }, 120_000);
  });
}
