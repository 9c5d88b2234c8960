import { describe, expect, it } from "vitest";
import { type ChannelId, Channels } from "../packages/ws-channels/src/index.js";

/** A member that records what it is sent; `fail` makes its send throw. */
class Recorder {
  readonly got: (string | Uint8Array)[] = [];
  fail = false;
  constructor(readonly name = "") {}
  send(data: string | Uint8Array): void {
    if (this.fail) throw new Error(`${this.name} cannot write`);
    this.got.push(data);
  }
}

/** A small seeded PRNG (mulberry32), so a failing sequence can be replayed. */
function random(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

describe("join, leave, member", () => {
  it("join is true once, then a no-op that keeps the first meta", () => {
    const channels = new Channels<{ user: string }>();
    const a = new Recorder();
    expect(channels.join("room", a, { user: "first" })).toBe(true);
    expect(channels.join("room", a, { user: "second" })).toBe(false);
    expect(channels.count("room")).toBe(1);
    expect(channels.reduce("room", [] as string[], (acc, { meta }) => [...acc, meta.user])).toEqual(["first"]);
  });

  it("leave is false for a non-member, never throws for it, and true once for a member", () => {
    const channels = new Channels();
    const a = new Recorder();
    expect(channels.leave("room", a)).toBe(false);
    channels.join("room", a);
    expect(channels.member("room", a)).toBe(true);
    expect(channels.leave("room", a)).toBe(true);
    expect(channels.leave("room", a)).toBe(false);
    expect(channels.member("room", a)).toBe(false);
  });

  it("leave(member) leaves every channel and returns how many", () => {
    const channels = new Channels();
    const a = new Recorder();
    const b = new Recorder();
    for (const channel of ["x", "y", 7]) channels.join(channel, a);
    channels.join("x", b);
    expect(channels.channelsOf(a)).toEqual(["x", "y", 7]);
    expect(channels.leave(a)).toBe(3);
    expect(channels.channelsOf(a)).toEqual([]);
    expect(channels.leave(a)).toBe(0);
    expect(channels.count("x")).toBe(1);
    expect(channels.stats()).toMatchObject({ channels: 1, members: 1, memberships: 1 });
  });

  it("string and number channels with the same digits are different channels", () => {
    const channels = new Channels();
    const a = new Recorder();
    channels.join(1, a);
    expect(channels.member("1", a)).toBe(false);
    expect(channels.member(1, a)).toBe(true);
  });

  it("deletes a channel with its last member and asks the sharder again when it comes back", () => {
    const asked: ChannelId[] = [];
    const channels = new Channels({
      sharder: (channel) => {
        asked.push(channel);
        return 4;
      },
    });
    const a = new Recorder();
    const b = new Recorder();
    channels.join("room", a);
    channels.join("room", b);
    expect(asked).toEqual(["room"]);
    channels.leave("room", a);
    channels.leave(b);
    expect(channels.stats()).toMatchObject({ channels: 0, members: 0, memberships: 0 });
    expect(channels.count("room")).toBe(0);
    channels.join("room", a);
    expect(asked).toEqual(["room", "room"]);
  });

  it("reduce folds over every member and its meta, across shards", () => {
    const channels = new Channels<number>({ sharder: { shards: () => 8 } });
    const members = Array.from({ length: 100 }, () => new Recorder());
    members.forEach((member, i) => {
      channels.join("sum", member, i);
    });
    expect(channels.reduce("sum", 0, (acc, { meta }) => acc + meta)).toBe(4950);
    const seen = channels.reduce("sum", new Set<unknown>(), (acc, { member }) => acc.add(member));
    expect(seen).toEqual(new Set(members));
    expect(channels.reduce("nobody", "initial", () => "changed")).toBe("initial");
  });

  it("a 16-shard sharder gives the same answers as one shard over 5,000 random operations", () => {
    const one = new Channels<number>();
    const sixteen = new Channels<number>({ sharder: () => 16 });
    const members = Array.from({ length: 40 }, (_, i) => new Recorder(`m${i}`));
    const names: ChannelId[] = ["a", "b", "c", 1, 2];
    const pick = random(42);
    const sorted = (list: unknown[]): unknown[] => list.map(String).sort();
    for (let step = 0; step < 5000; step++) {
      const member = members[pick(members.length)]!;
      const channel = names[pick(names.length)]!;
      const both = <T>(f: (c: Channels<number>) => T): T => {
        const [x, y] = [f(one), f(sixteen)];
        expect(y, `step ${step}`).toEqual(x);
        return x;
      };
      switch (pick(5)) {
        case 0:
        case 1:
          both((c) => c.join(channel, member, step));
          break;
        case 2:
          both((c) => c.leave(channel, member));
          break;
        case 3:
          both((c) => c.member(channel, member));
          break;
        case 4:
          if (pick(10) === 0) both((c) => c.leave(member));
          break;
      }
      both((c) => c.count(channel));
      both((c) => sorted(c.channelsOf(member)));
      both((c) => sorted(c.reduce(channel, [] as string[], (acc, m) => [...acc, `${(m.member as Recorder).name}:${m.meta}`])));
    }
    expect(sixteen.stats()).toEqual(one.stats());
  });
});

describe("broadcast", () => {
  it("reaches every member, text as text and bytes as bytes, and reports the count", async () => {
    const channels = new Channels({ sharder: () => 4 });
    const members = Array.from({ length: 10 }, () => new Recorder());
    for (const member of members) channels.join("room", member);
    const outsider = new Recorder();
    channels.join("other", outsider);
    const bytes = Buffer.from([0, 1, 2, 255]);
    expect(await channels.broadcast("room", "hello")).toEqual({ delivered: 10, failed: 0, dropped: 0 });
    expect(await channels.broadcast("room", bytes)).toEqual({ delivered: 10, failed: 0, dropped: 0 });
    for (const member of members) expect(member.got).toEqual(["hello", bytes]);
    expect(outsider.got).toEqual([]);
  });

  it("resolves all zeros for a channel with no members", async () => {
    expect(await new Channels().broadcast("nobody", "x")).toEqual({ delivered: 0, failed: 0, dropped: 0 });
  });

  it("skips the member given as except", async () => {
    const channels = new Channels();
    const [a, b, c] = [new Recorder(), new Recorder(), new Recorder()];
    for (const member of [a, b, c]) channels.join("room", member);
    expect(await channels.broadcast("room", "x", { except: b })).toEqual({ delivered: 2, failed: 0, dropped: 0 });
    expect([a.got, b.got, c.got]).toEqual([["x"], [], ["x"]]);
  });

  it("counts members that throw or are closed as failed, removes them everywhere, and keeps delivering", async () => {
    const channels = new Channels({ sharder: () => 3 });
    const good = Array.from({ length: 6 }, () => new Recorder());
    const thrower = new Recorder("thrower");
    thrower.fail = true;
    const closed = Object.assign(new Recorder("closed"), { readyState: 1 });
    for (const member of [...good.slice(0, 3), thrower, closed, ...good.slice(3)]) channels.join("room", member);
    channels.join("elsewhere", thrower);
    channels.join("elsewhere", closed);
    closed.readyState = 3; // closed after joining
    expect(await channels.broadcast("room", "m")).toEqual({ delivered: 6, failed: 2, dropped: 0 });
    for (const member of good) expect(member.got).toEqual(["m"]);
    expect(channels.channelsOf(thrower)).toEqual([]);
    expect(channels.channelsOf(closed)).toEqual([]);
    expect(channels.count("elsewhere")).toBe(0);
    expect(await channels.broadcast("room", "n")).toEqual({ delivered: 6, failed: 0, dropped: 0 });
  });

  it("keeps per-member order over 16 shards and 1,000 broadcasts, with a small writer pool", async () => {
    const channels = new Channels({ sharder: () => 16, writers: 2, maxWriters: 4 });
    const members = Array.from({ length: 64 }, () => new Recorder());
    for (const member of members) channels.join("room", member);
    const sent = Array.from({ length: 1000 }, (_, i) => String(i));
    const results = await Promise.all(sent.map((message) => channels.broadcast("room", message)));
    expect(results.every((r) => r.delivered === 64 && r.failed === 0)).toBe(true);
    for (const member of members) expect(member.got).toEqual(sent);
  });

  it("a send that returns a rejecting promise makes the member leave, with no unhandled rejection", async () => {
    const channels = new Channels();
    const good = new Recorder();
    const flaky = { send: () => Promise.reject(new Error("peer gone")) };
    channels.join("room", good);
    channels.join("room", flaky);
    channels.join("other", flaky);
    expect(await channels.broadcast("room", "m")).toEqual({ delivered: 2, failed: 0, dropped: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(channels.channelsOf(flaky)).toEqual([]);
    expect(channels.count("room")).toBe(1);
  });

  it("a member that is an emitter of its own (once/off, not a Node EventEmitter) leaves when it emits close, and is unwatched when it leaves", () => {
    const channels = new Channels();
    const listeners = new Set<() => void>();
    const member = {
      send: (): void => undefined,
      once: (event: string, listener: () => void): void => void (event === "close" && listeners.add(listener)),
      off: (event: string, listener: () => void): void => void (event === "close" && listeners.delete(listener)),
    };
    channels.join("a", member);
    channels.join("b", member);
    expect(listeners.size).toBe(1);
    for (const listener of [...listeners]) listener();
    expect(channels.channelsOf(member)).toEqual([]);
    expect(listeners.size).toBe(0);
    channels.join("a", member);
    expect(listeners.size).toBe(1);
    channels.leave("a", member);
    expect(listeners.size).toBe(0);
  });

  it("joining a member that is already closed does nothing", () => {
    const channels = new Channels();
    const closed = Object.assign(new Recorder(), { readyState: 3 });
    expect(channels.join("room", closed)).toBe(false);
    expect(channels.stats()).toMatchObject({ channels: 0, members: 0, memberships: 0 });
  });

  it("close() waits for queued broadcasts, then broadcast rejects with ERR_CHANNELS_CLOSED", async () => {
    const channels = new Channels({ sharder: () => 16, writers: 1, maxWriters: 1 });
    const member = new Recorder();
    channels.join("room", member);
    const queued = Array.from({ length: 50 }, (_, i) => channels.broadcast("room", String(i)));
    await channels.close();
    expect(member.got).toHaveLength(50);
    await expect(Promise.all(queued)).resolves.toHaveLength(50);
    await expect(channels.broadcast("room", "late")).rejects.toMatchObject({ code: "ERR_CHANNELS_CLOSED" });
    expect(channels.join("room", new Recorder())).toBe(true); // membership still works while shutting down
  });
});

describe("argument errors", () => {
  const member = new Recorder();

  it("rejects channels that are not a string or a finite number, naming the argument", () => {
    const channels = new Channels();
    for (const bad of [undefined, null, {}, [], true, NaN, Infinity, Symbol("s")]) {
      expect(() => channels.join(bad as never, member)).toThrow(TypeError);
      expect(() => channels.join(bad as never, member)).toThrow(/channel/);
      expect(() => channels.leave(bad as never, member)).toThrow(/channel/);
      expect(() => channels.member(bad as never, member)).toThrow(/channel/);
      expect(() => channels.count(bad as never)).toThrow(/channel/);
      expect(() => channels.broadcast(bad as never, "x")).toThrow(/channel/);
      expect(() => channels.reduce(bad as never, 0, (a) => a)).toThrow(/channel/);
    }
  });

  it("rejects members that cannot be written to, naming the argument", () => {
    const channels = new Channels();
    for (const bad of [undefined, null, 5, "socket", {}, { send: "not a function" }]) {
      expect(() => channels.join("room", bad as never)).toThrow(TypeError);
      expect(() => channels.join("room", bad as never)).toThrow(/member/);
      expect(() => channels.leave(bad as never)).toThrow(/member/);
      expect(() => channels.channelsOf(bad as never)).toThrow(/member/);
    }
    expect(channels.stats().channels).toBe(0);
  });

  it("rejects a bad message, bad options and a bad reduce function", () => {
    const channels = new Channels();
    expect(() => channels.broadcast("room", 5 as never)).toThrow(/message/);
    expect(() => channels.broadcast("room", { text: "x" } as never)).toThrow(TypeError);
    expect(() => channels.broadcast("room", "x", null as never)).toThrow(/options/);
    expect(() => channels.reduce("room", 0, "sum" as never)).toThrow(/fn/);
  });

  it("says what it got in words: an object, an array, null, the string \"x\", never 'a Object'", () => {
    const channels = new Channels();
    const got = (fn: () => unknown): string => {
      try {
        fn();
      } catch (error) {
        return (error as Error).message.replace(/^.*, got /, "");
      }
      throw new Error("no error");
    };
    expect(got(() => channels.join({} as never, member))).toBe("an object");
    expect(got(() => channels.join(Object.create(null) as never, member))).toBe("an object");
    expect(got(() => channels.join([] as never, member))).toBe("an array");
    expect(got(() => channels.join(null as never, member))).toBe("null");
    expect(got(() => channels.join(undefined as never, member))).toBe("undefined");
    expect(got(() => channels.join(true as never, member))).toBe("true");
    expect(got(() => channels.join(NaN, member))).toBe("NaN");
    expect(got(() => channels.join(new Map() as never, member))).toBe("an instance of Map");
    expect(got(() => channels.join("room", "socket" as never))).toBe('the string "socket"');
    expect(got(() => channels.join("room", "s".repeat(100) as never))).toBe(`the string "${"s".repeat(40)}..."`);
    expect(got(() => channels.join("room", (() => undefined) as never))).toBe("a function");
    expect(got(() => channels.broadcast("room", 5 as never))).toBe("the number 5");
    expect(got(() => channels.broadcast("room", "x", [] as never))).toBe("an array");
    expect(got(() => channels.reduce("room", 0, "sum" as never))).toBe('the string "sum"');
    expect(got(() => new Channels({ writers: 1.5 }))).toBe("the number 1.5");
    expect(got(() => new Channels({ slowConsumer: "drop" as never }))).toBe('the string "drop"');
    expect(got(() => new Channels({ broker: {} as never }))).toBe("an object");
    expect(got(() => new Channels(null as never))).toBe("null");
  });

  it("rejects writer counts out of range", () => {
    expect(() => new Channels({ writers: 0 })).toThrow(RangeError);
    expect(() => new Channels({ writers: 1.5 })).toThrow(/writers/);
    expect(() => new Channels({ writers: 10, maxWriters: 9 })).toThrow(/maxWriters/);
    expect(() => new Channels({ writers: 60 })).not.toThrow(); // maxWriters follows writers past 50
    expect(() => new Channels({ sharder: 3 as never })).toThrow(/sharder/);
  });

  it("rejects a sharder answer that is not an integer >= 1 and creates nothing", () => {
    for (const answer of [0, -1, 1.5, NaN, "2", 1025, 2 ** 32]) {
      const channels = new Channels({ sharder: () => answer as number });
      expect(() => channels.join("room", member)).toThrow(RangeError);
      expect(() => channels.join("room", member)).toThrow(/sharder/);
      expect(channels.stats()).toMatchObject({ channels: 0, members: 0, memberships: 0 });
    }
  });
});
