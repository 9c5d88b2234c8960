import { execFile } from "node:child_process";
import { once } from "node:events";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { type ChannelId, Channels, type MembershipCause } from "../packages/ws-channels/src/index.js";
import { type Cleanups, eventually, within, wsPairs } from "./helpers.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A member that records nothing; `fail` makes its send throw, `buffered` is its bufferedAmount. */
class Member {
  fail = false;
  bufferedAmount = 0;
  constructor(readonly name: string) {}
  send(): void {
    if (this.fail) throw new Error(`${this.name} cannot write`);
  }
}

/** A listener that records every change it is told, and what the table said at that moment. */
function recorder(channels: Channels<{ user: string }, Member>) {
  const changes: [ChannelId, Member, { user: string }, MembershipCause][] = [];
  const seen: { count: number; channelsOf: ChannelId[] }[] = [];
  const listener = (channel: ChannelId, member: Member, meta: { user: string }, cause: MembershipCause): void => {
    changes.push([channel, member, meta, cause]);
    seen.push({ count: channels.count(channel), channelsOf: channels.channelsOf(member) });
  };
  return { changes, seen, listener };
}

describe("observe: joins and leaves, with meta and cause", () => {
  it("tells joins and explicit leaves once the table has changed, with the meta the member had", () => {
    const channels = new Channels<{ user: string }, Member>();
    const { changes, seen, listener } = recorder(channels);
    channels.observe(listener);
    const a = new Member("a");
    channels.join("room", a, { user: "ann" });
    channels.join("room", a, { user: "again" }); // not a change
    channels.leave("room", a);
    channels.leave("room", a); // not a change
    expect(changes).toEqual([
      ["room", a, { user: "ann" }, "join"],
      ["room", a, { user: "ann" }, "leave"],
    ]);
    expect(seen).toEqual([
      { count: 1, channelsOf: ["room"] },
      { count: 0, channelsOf: [] },
    ]);
  });

  it("leave(member) tells one leave per channel, after it has left them all", () => {
    const channels = new Channels<{ user: string }, Member>();
    const a = new Member("a");
    for (const channel of ["x", 7, "y"]) channels.join(channel, a, { user: String(channel) });
    const { changes, seen, listener } = recorder(channels);
    channels.observe(listener);
    expect(channels.leave(a)).toBe(3);
    expect(changes).toEqual([
      ["x", a, { user: "x" }, "leave"],
      [7, a, { user: "7" }, "leave"],
      ["y", a, { user: "y" }, "leave"],
    ]);
    expect(seen.every(({ channelsOf }) => channelsOf.length === 0)).toBe(true);
  });

  it("a channel's listener hears that channel only (42 and '42' are two); the function it returns removes it", () => {
    const channels = new Channels<undefined, Member>();
    const heard: [ChannelId, MembershipCause][] = [];
    const remove = channels.observe(42, (channel, _member, _meta, cause) => heard.push([channel, cause]));
    const a = new Member("a");
    channels.join("42", a);
    channels.join(42, a);
    channels.leave(a);
    expect(heard).toEqual([
      [42, "join"],
      [42, "leave"],
    ]);
    remove();
    remove(); // a second call does nothing
    channels.join(42, a);
    expect(heard).toHaveLength(2);
  });

  it("tells the channel's listeners, then every channel's, each in the order they were added", () => {
    const channels = new Channels();
    const order: string[] = [];
    channels.observe(() => order.push("every 1"));
    channels.observe("room", () => order.push("room 1"));
    channels.observe(() => order.push("every 2"));
    channels.observe("room", () => order.push("room 2"));
    channels.join("room", new Member("a"));
    expect(order).toEqual(["room 1", "room 2", "every 1", "every 2"]);
  });

  it("a slow consumer closed under the close policy leaves with 'slow', a member whose write throws with 'failed'", async () => {
    const channels = new Channels<undefined, Member>({ slowConsumer: "close", highWaterMark: 10 });
    const causes: [string, ChannelId, MembershipCause][] = [];
    channels.observe((channel, member, _meta, cause) => causes.push([member.name, channel, cause]));
    const slow = new Member("slow");
    const failing = new Member("failing");
    const fine = new Member("fine");
    for (const member of [slow, failing, fine]) for (const channel of ["a", "b"]) channels.join(channel, member);
    causes.length = 0;
    slow.bufferedAmount = 11;
    failing.fail = true;
    expect(await channels.broadcast("a", "x")).toEqual({ delivered: 1, failed: 1, dropped: 1 });
    expect(causes).toEqual([
      ["slow", "a", "slow"],
      ["slow", "b", "slow"],
      ["failing", "a", "failed"],
      ["failing", "b", "failed"],
    ]);
    expect(channels.channelsOf(fine)).toEqual(["a", "b"]);
  });

  it("rejects a listener that is not a function and a bad channel, naming what it got", () => {
    const channels = new Channels();
    expect(() => channels.observe("room", "listener" as never)).toThrow(
      'listener must be a function (channel, member, meta, cause) => void, got the string "listener"',
    );
    expect(() => channels.observe(null as never)).toThrow(/listener must be a function .*, got null/);
    expect(() => channels.observe({} as never, () => undefined)).toThrow("channel must be a string or a finite number, got an object");
  });
});

describe("observe: real ws sockets that close", () => {
  it("a socket closed by its peer leaves every channel with 'close' and its meta; a close listener added later sees it gone", async () => {
    const { server, clients } = await wsPairs(2, cleanups);
    const channels = new Channels<{ user: string }, WebSocket>();
    const [ws, other] = [server[0]!, server[1]!];
    channels.join("a", ws, { user: "ann" });
    channels.join(1, ws, { user: "ann in 1" });
    channels.join("a", other, { user: "bob" });
    const changes: [ChannelId, WebSocket, { user: string }, MembershipCause][] = [];
    channels.observe((channel, member, meta, cause) => changes.push([channel, member, meta, cause]));
    let channelsAtClose: ChannelId[] | undefined;
    ws.on("close", () => (channelsAtClose = channels.channelsOf(ws))); // added after the first join
    await clients[0]!.close();
    await eventually(() => changes.length === 2, "two leaves by close");
    expect(changes).toEqual([
      ["a", ws, { user: "ann" }, "close"],
      [1, ws, { user: "ann in 1" }, "close"],
    ]);
    expect(channelsAtClose).toEqual([]);
    expect(channels.reduce("a", [] as string[], (users, { meta }) => [...users, meta.user])).toEqual(["bob"]);
  });

  it("a socket that is closing when a broadcast reaches it leaves with 'failed'", async () => {
    const { server, clients } = await wsPairs(2, cleanups);
    const channels = new Channels<undefined, WebSocket>();
    for (const ws of server) channels.join("room", ws);
    const causes: MembershipCause[] = [];
    channels.observe("room", (_channel, member, _meta, cause) => causes.push(member === server[0] ? cause : "join"));
    const closed = once(server[0]!, "close");
    server[0]!.close(1000); // CLOSING until the peer answers
    expect(await channels.broadcast("room", "x")).toEqual({ delivered: 1, failed: 1, dropped: 0 });
    expect(causes).toEqual(["failed"]);
    await within(closed, "the server side's close event");
    expect(causes).toEqual(["failed"]); // its close event finds it gone: no second leave
    expect(channels.channelsOf(server[1]!)).toEqual(["room"]);
    void clients;
  });
});

describe("observe: order, and snapshots", () => {
  it("a change a listener makes is told after the one in hand, to every listener, in the order made", () => {
    const channels = new Channels<undefined, Member>();
    const a = new Member("a");
    const told: string[][] = [[], []];
    channels.observe((channel, member, _meta, cause) => {
      told[0]!.push(`${cause} ${member.name}`);
      if (cause === "leave") channels.join(channel, member); // rejoins at once
    });
    channels.observe((_channel, member, _meta, cause) => told[1]!.push(`${cause} ${member.name}`));
    channels.join("room", a);
    channels.leave("room", a);
    expect(told[0]).toEqual(["join a", "leave a", "join a"]);
    expect(told[1]).toEqual(told[0]);
    expect(channels.member("room", a)).toBe(true);
  });

  it("a listener added while another is told hears only the changes made after it", () => {
    const channels = new Channels<undefined, Member>();
    const late: string[] = [];
    channels.observe((_channel, member) => {
      if (member.name === "first") channels.observe((_c, m, _meta, cause) => late.push(`${cause} ${m.name}`));
    });
    channels.join("room", new Member("first"));
    channels.join("room", new Member("second"));
    expect(late).toEqual(["join second"]);
  });

  it("a snapshot taken when a listener is added, plus the changes it hears, is the channel at every step", () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const channels = new Channels<number, Member>({ sharder: () => 4 });
    const members = Array.from({ length: 30 }, (_, i) => new Member(`m${i}`));
    const snapshot = (): Map<Member, number> =>
      channels.reduce("room", new Map<Member, number>(), (map, { member, meta }) => map.set(member, meta));
    const views: Map<Member, number>[] = [];
    for (let step = 0; step < 3000; step++) {
      if (step % 500 === 0) {
        const view = snapshot();
        views.push(view);
        channels.observe("room", (_channel, member, meta, cause) => {
          if (cause === "join") view.set(member, meta);
          else view.delete(member);
        });
      }
      const member = members[random(members.length)]!;
      const op = random(3);
      if (op === 0) channels.join("room", member, step);
      else if (op === 1) channels.leave("room", member);
      else channels.leave(member);
      for (const view of views) expect(view).toEqual(snapshot());
    }
    expect(views).toHaveLength(6);
  });
});

describe("observe: a listener that throws", () => {
  it("stops neither the change nor the other listeners; its error is an uncaught exception in a later tick", async () => {
    const script = `
      import { Channels } from "ws-channels";
      const channels = new Channels();
      const heard = [];
      process.on("uncaughtException", (error) => console.log("uncaught:", error.message, JSON.stringify(heard), channels.count("room")));
      channels.observe(() => { throw new Error("listener bug"); });
      channels.observe((channel, member, meta, cause) => heard.push(cause));
      console.log("joined:", channels.join("room", { send() {} }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url),
      timeout: 10_000,
    });
    expect(stdout).toBe('joined: true\nuncaught: listener bug ["join"] 1\n');
  });
});
