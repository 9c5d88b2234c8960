import { describe, expect, it } from "vitest";
import { Channels } from "../packages/ws-channels/src/index.js";

/** A member that logs what it is sent, under its name, in one log shared by every member. */
class Logger {
  onSend: ((data: string) => void) | undefined;
  constructor(
    readonly name: string,
    readonly log: string[],
  ) {}
  send(data: string | Uint8Array): void {
    this.log.push(`${this.name}:${String(data)}`);
    this.onSend?.(String(data));
  }
}

/** What one member got, in order, from a shared log. */
const gotBy = (log: string[], name: string): string[] =>
  log.filter((line) => line.startsWith(`${name}:`)).map((line) => line.slice(name.length + 1));

describe("the write-at-once path (one shard, nothing queued)", () => {
  it("writes a small channel's broadcast before broadcast() returns, and settles its counts and totals at once", async () => {
    const channels = new Channels();
    const log: string[] = [];
    for (const name of ["a", "b", "c"]) channels.join("room", new Logger(name, log));
    const result = channels.broadcast("room", "m");
    expect(log).toEqual(["a:m", "b:m", "c:m"]);
    expect(channels.stats()).toMatchObject({ delivered: 3, inFlight: 0 });
    expect(await result).toEqual({ delivered: 3, failed: 0, dropped: 0 });
  });

  it("does not overtake a broadcast still queued on another channel, for a member of both", async () => {
    const channels = new Channels();
    const log: string[] = [];
    const both = new Logger("x", log);
    for (let i = 0; i < 300; i++) channels.join("big", new Logger(`big${i}`, log)); // too big to write at once
    channels.join("big", both);
    channels.join("small", both);
    const done = [channels.broadcast("big", "b1"), channels.broadcast("small", "s1"), channels.broadcast("small", "s2")];
    expect(gotBy(log, "x")).toEqual([]); // the big one is queued, so the small ones queue behind it
    await Promise.all(done);
    expect(gotBy(log, "x")).toEqual(["b1", "s1", "s2"]);
    await channels.broadcast("small", "s3"); // idle again: at once
    expect(gotBy(log, "x")).toEqual(["b1", "s1", "s2", "s3"]);
  });

  it("keeps order with queued broadcasts and send() barriers in between, over a paused fan-out", async () => {
    const channels = new Channels({ sliceMs: 0.01 });
    const log: string[] = [];
    const x = new Logger("x", log);
    // Big enough to be sliced over several turns with a tiny budget; x is its last member.
    for (let i = 0; i < 5000; i++) channels.join("big", new Logger(`big${i}`, log));
    channels.join("big", x);
    channels.join("small", x);
    const done: Promise<unknown>[] = [];
    done.push(channels.broadcast("small", "s1")); // at once
    done.push(channels.broadcast("big", "b1"));
    done.push(channels.broadcast("small", "s2"));
    done.push(channels.send(x, "d1"));
    done.push(channels.broadcast("small", "s3"));
    done.push(channels.broadcast("big", "b2"));
    await Promise.all(done);
    const got = gotBy(log, "x");
    expect(got[0]).toBe("s1");
    const before = (a: string, b: string): boolean => got.indexOf(a) < got.indexOf(b);
    expect([...got].sort()).toEqual(["b1", "b2", "d1", "s1", "s2", "s3"]);
    for (const [a, b] of [
      ["s1", "s2"],
      ["s2", "s3"],
      ["b1", "b2"],
      ["b1", "d1"],
      ["s2", "d1"],
      ["d1", "s3"],
      ["d1", "b2"],
    ] as const) {
      expect(before(a, b), `${a} before ${b} in ${got.join(",")}`).toBe(true);
    }
  });

  it("a broadcast made by a member's own send() waits for the write under way, as it would on the pool", async () => {
    const channels = new Channels();
    const log: string[] = [];
    const [a, b] = ["a", "b"].map((name) => new Logger(name, log)) as [Logger, Logger];
    for (const member of [a, b]) channels.join("room", member);
    let nested: Promise<unknown> | undefined;
    a.onSend = (data) => {
      if (data === "m1") nested = channels.broadcast("room", "m2");
    };
    await channels.broadcast("room", "m1");
    await nested;
    expect(gotBy(log, "b")).toEqual(["m1", "m2"]);
  });

  it("a send() made by a member's own send() waits for the write under way, as it would on the pool", async () => {
    const channels = new Channels();
    const log: string[] = [];
    const [a, b] = ["a", "b"].map((name) => new Logger(name, log)) as [Logger, Logger];
    for (const member of [a, b]) channels.join("room", member);
    let nested: Promise<unknown> | undefined;
    a.onSend = (data) => {
      if (data === "m1") nested = channels.send(b, "direct");
    };
    await channels.broadcast("room", "m1");
    await nested;
    expect(gotBy(log, "b")).toEqual(["m1", "direct"]);
  });
});
