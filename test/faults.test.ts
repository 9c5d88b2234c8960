import { afterEach, describe, expect, it } from "vitest";
import { Channels } from "../packages/ws-channels/src/index.js";
import { type Cleanups, eventually, within, wsPairs } from "./helpers.js";

// The suite runs with --unhandled-rejections=strict (vitest.config.ts): a stray rejection here
// ends the worker and fails the run.

class Recorder {
  readonly got: string[] = [];
  send(data: string | Uint8Array): void {
    this.got.push(String(data));
  }
}

const cleanups: Cleanups = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe("tryJoin and the authorize hook", () => {
  it("joins when allowed, refuses when the hook says false, throws or rejects", async () => {
    const channels = new Channels<{ role: string }>({
      authorize: (channel, _member, meta) => {
        if (channel === "throws") throw new Error("hook bug");
        if (channel === "rejects") return Promise.reject(new Error("hook down"));
        return channel !== "staff" || meta.role === "staff";
      },
    });
    const [guest, staff] = [new Recorder(), new Recorder()];
    expect(await channels.tryJoin("staff", guest, { role: "guest" })).toBe(false);
    expect(await channels.tryJoin("staff", staff, { role: "staff" })).toBe(true);
    expect(await channels.tryJoin("staff", staff, { role: "staff" })).toBe(true); // already in: still a member
    expect(await channels.tryJoin("throws", guest, { role: "guest" })).toBe(false);
    expect(await channels.tryJoin("rejects", guest, { role: "guest" })).toBe(false);
    expect(channels.channelsOf(guest)).toEqual([]);
    expect(channels.join("staff", guest, { role: "guest" })).toBe(true); // join() is the trusted path
  });

  it("a member that closes while the hook decides is not added", async () => {
    const member = Object.assign(new Recorder(), { readyState: 1 });
    const channels = new Channels({
      authorize: async () => {
        member.readyState = 3;
        return true;
      },
    });
    expect(await channels.tryJoin("room", member)).toBe(false);
    expect(channels.stats().memberships).toBe(0);
  });

  it("rejects a hook that is not a function", () => {
    expect(() => new Channels({ authorize: "yes" as never })).toThrow(/authorize/);
  });
});

describe("process faults", () => {
  it("writes that throw in every other member: no crash, the rest get every message in order", async () => {
    const channels = new Channels({ sharder: () => 8, sliceMs: 0.05 });
    const good = Array.from({ length: 200 }, () => new Recorder());
    const bad = Array.from({ length: 200 }, () => ({
      send: () => {
        throw new Error("EPIPE");
      },
    }));
    good.forEach((m, i) => {
      channels.join("room", m);
      channels.join("room", bad[i]!);
    });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => channels.broadcast("room", String(i))));
    expect(results[0]).toEqual({ delivered: 200, failed: 200, dropped: 0 });
    expect(results.slice(1).every((r) => r.delivered === 200 && r.failed === 0)).toBe(true);
    for (const m of good) expect(m.got).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  it("members that close in the middle of a fan-out are counted once and the others keep receiving", async () => {
    const { server, clients } = await wsPairs(20, cleanups);
    const channels = new Channels({ sharder: () => 4, sliceMs: 0.01 });
    for (let i = 0; i < 5000; i++) channels.join("room", new Recorder()); // make the fan-out span turns
    for (const ws of server) channels.join("room", ws);
    const pending = Array.from({ length: 20 }, (_, i) => channels.broadcast("room", `m${i}`));
    for (const c of clients.slice(0, 10)) c.ws.terminate(); // gone mid-fan-out, without a close frame
    const results = await within(Promise.all(pending), "the broadcasts", 20_000);
    const failed = results.reduce((n, r) => n + r.failed, 0);
    expect(failed).toBeLessThanOrEqual(10); // each closed socket fails at most once, then it has left
    await eventually(() => channels.count("room") === 5010, "the closed sockets to leave");
    for (const c of clients.slice(10)) {
      const got: string[] = [];
      for (let i = 0; i < 20; i++) got.push(String((await c.nextRaw()).data));
      expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    }
  });

  it("close() while broadcasts are queued: they are all written, later ones reject, nothing is unhandled", async () => {
    const channels = new Channels({ sharder: () => 16, writers: 1, maxWriters: 1, sliceMs: 0.01 });
    const members = Array.from({ length: 2000 }, () => new Recorder());
    for (const m of members) channels.join("room", m);
    const queued = Array.from({ length: 30 }, (_, i) => channels.broadcast("room", String(i)));
    const closing = channels.close();
    const late = channels.broadcast("room", "late");
    await expect(late).rejects.toMatchObject({ code: "ERR_CHANNELS_CLOSED" });
    await within(closing, "close()", 20_000);
    expect(channels.stats().inFlight).toBe(0);
    await Promise.all(queued);
    for (const m of members) expect(m.got).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
  });
});
