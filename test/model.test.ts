import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ChannelId, Channels } from "../packages/ws-channels/src/index.js";

/** The reference: a naive Map<channel, Map<member, meta>>; a member's channels in join order. */
class Model {
  readonly channels = new Map<ChannelId, Map<object, number>>();

  join(channel: ChannelId, member: object, meta: number): boolean {
    const members = this.channels.get(channel) ?? new Map<object, number>();
    this.channels.set(channel, members);
    if (members.has(member)) return false;
    members.set(member, meta);
    return true;
  }

  leave(channel: ChannelId, member: object): boolean {
    const members = this.channels.get(channel);
    if (!members?.delete(member)) return false;
    if (members.size === 0) this.channels.delete(channel);
    return true;
  }

  leaveAll(member: object): number {
    let left = 0;
    for (const channel of [...this.channels.keys()]) if (this.leave(channel, member)) left++;
    return left;
  }

  member(channel: ChannelId, member: object): boolean {
    return this.channels.get(channel)?.has(member) ?? false;
  }

  count(channel: ChannelId): number {
    return this.channels.get(channel)?.size ?? 0;
  }
}

/** A member that accepts writes and records nothing. */
class Member {
  constructor(readonly name: string) {}
  send(): void {}
}

const CHANNELS: ChannelId[] = ["a", "b", "", "__proto__", "constructor", "toString", 0, 1, "1", 2.5];
const MEMBERS = Array.from({ length: 8 }, (_, i) => new Member(`m${i}`));

const op = fc.oneof(
  fc.record({ kind: fc.constant("join" as const), m: fc.nat(7), c: fc.nat(CHANNELS.length - 1), meta: fc.integer() }),
  fc.record({ kind: fc.constant("leave" as const), m: fc.nat(7), c: fc.nat(CHANNELS.length - 1) }),
  fc.record({ kind: fc.constant("leaveAll" as const), m: fc.nat(7) }),
  fc.record({ kind: fc.constant("member" as const), m: fc.nat(7), c: fc.nat(CHANNELS.length - 1) }),
  fc.record({ kind: fc.constant("count" as const), c: fc.nat(CHANNELS.length - 1) }),
  fc.record({ kind: fc.constant("channelsOf" as const), m: fc.nat(7) }),
  fc.record({ kind: fc.constant("reduce" as const), c: fc.nat(CHANNELS.length - 1) }),
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

/** What one operation answers, on the library and on the model alike. */
function apply(channels: Channels<number>, model: Model, o: Op): [unknown, unknown] {
  const member = "m" in o ? MEMBERS[o.m]! : undefined;
  const channel = "c" in o ? CHANNELS[o.c]! : undefined;
  switch (o.kind) {
    case "join":
      return [channels.join(channel!, member!, o.meta), model.join(channel!, member!, o.meta)];
    case "leave":
      return [channels.leave(channel!, member!), model.leave(channel!, member!)];
    case "leaveAll":
      return [channels.leave(member!), model.leaveAll(member!)];
    case "member":
      return [channels.member(channel!, member!), model.member(channel!, member!)];
    case "count":
      return [channels.count(channel!), model.count(channel!)];
    case "channelsOf": {
      const expected = [...model.channels.keys()].filter((c) => model.member(c, member!));
      return [[...channels.channelsOf(member!)].sort(byKey), expected.sort(byKey)];
    }
    case "reduce": {
      const ours = channels.reduce(channel!, [] as string[], (acc, { member: m, meta }) => [...acc, `${(m as Member).name}=${meta}`]);
      const theirs = [...(model.channels.get(channel!) ?? [])].map(([m, meta]) => `${(m as Member).name}=${meta}`);
      return [ours.sort(), theirs.sort()];
    }
  }
}

const byKey = (x: ChannelId, y: ChannelId): number => `${typeof x}:${String(x)}`.localeCompare(`${typeof y}:${String(y)}`);

describe("Channels against a naive model", () => {
  it("gives the model's answers after every step, over 1,000 random sequences and sharders of 1 to 64 shards", () => {
    fc.assert(
      fc.property(fc.func(fc.integer({ min: 1, max: 64 })), fc.array(op, { maxLength: 200 }), (shards, ops) => {
        const channels = new Channels<number>({ sharder: (channel) => shards(channel) });
        const model = new Model();
        for (const [step, o] of ops.entries()) {
          const [ours, theirs] = apply(channels, model, o);
          expect(ours, `step ${step}: ${JSON.stringify(o)}`).toEqual(theirs);
        }
        // No empty channel, and the reverse index holds exactly the live memberships.
        const memberships = [...model.channels.values()].reduce((n, members) => n + members.size, 0);
        const live = MEMBERS.filter((m) => [...model.channels.values()].some((members) => members.has(m)));
        expect(channels.stats()).toMatchObject({ channels: model.channels.size, members: live.length, memberships });
        for (const m of MEMBERS) {
          const expected = [...model.channels.keys()].filter((c) => model.member(c, m)).sort(byKey);
          expect([...channels.channelsOf(m)].sort(byKey)).toEqual(expected);
        }
        for (const c of CHANNELS) expect(channels.count(c)).toBe(model.count(c));
      }),
      { numRuns: 1000 },
    );
  });
});
