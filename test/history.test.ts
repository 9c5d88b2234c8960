import { afterEach, describe, expect, it } from "vitest";
import { History, type HistoryPolicy } from "../packages/ws-channels/src/index.js";

let clock = 0;
const made: History<string>[] = [];
/** A History on a clock the test moves: channels starting with "h" keep 3 messages for 1000 ms. */
function history(policy: HistoryPolicy | undefined = { size: 3, ttlMs: 1000 }): History<string> {
  const h = new History<string>({ history: (channel) => (String(channel).startsWith("h") ? policy : undefined), now: () => clock });
  made.push(h);
  return h;
}
afterEach(() => {
  for (const h of made.splice(0)) h.close();
  clock = 0;
});

describe("History", () => {
  it("gives offsets 1, 2, 3... per channel in one epoch, and nothing to channels without a policy", () => {
    const h = history();
    expect(h.position("h1")).toEqual({ epoch: expect.any(String), offset: 0 });
    const { epoch } = h.position("h1") ?? { epoch: "" };
    expect([h.append("h1", "a"), h.append("h1", "b"), h.append("h2", "x")]).toEqual([
      { epoch, offset: 1 },
      { epoch, offset: 2 },
      { epoch: expect.not.stringMatching(`^${epoch}$`), offset: 1 },
    ]);
    expect(h.append("other", "a")).toBeUndefined();
    expect(h.position("other")).toBeUndefined();
    expect(h.keeps("h1")).toBe(true);
    expect(h.keeps("other")).toBe(false);
  });

  it("recovers exactly the messages after the reader's offset, from any kept one and from 0", () => {
    const h = history();
    const epoch = h.position("h")?.epoch ?? "";
    expect(h.recover("h", { epoch, offset: 0 })).toEqual({ recovered: true, epoch, offset: 0, missed: [] });
    for (const say of ["a", "b", "c"]) h.append("h", say);
    expect(h.recover("h", { epoch, offset: 0 })).toEqual({
      recovered: true,
      epoch,
      offset: 3,
      missed: [
        { offset: 1, data: "a" },
        { offset: 2, data: "b" },
        { offset: 3, data: "c" },
      ],
    });
    expect(h.recover("h", { epoch, offset: 2 })).toMatchObject({ recovered: true, missed: [{ offset: 3, data: "c" }] });
    expect(h.recover("h", { epoch, offset: 3 })).toMatchObject({ recovered: true, offset: 3, missed: [] });
  });

  it("refuses another epoch, an offset past the newest, one older than kept, and more than max", () => {
    const h = history();
    const epoch = h.position("h")?.epoch ?? "";
    for (const say of ["a", "b", "c", "d", "e"]) h.append("h", say); // keeps 3, 4, 5
    const refused = { recovered: false, epoch, offset: 5 };
    expect(h.recover("h", { epoch: "other", offset: 4 })).toEqual(refused);
    expect(h.recover("h", { epoch, offset: 6 })).toEqual(refused);
    expect(h.recover("h", { epoch, offset: 1 })).toEqual(refused);
    expect(h.recover("h", { epoch, offset: 2 })).toMatchObject({ recovered: true, missed: [{ offset: 3 }, { offset: 4 }, { offset: 5 }] });
    expect(h.recover("h", { epoch, offset: 2 }, 2)).toEqual(refused);
    expect(h.recover("h", { epoch, offset: 3 }, 2)).toMatchObject({ recovered: true, missed: [{ data: "d" }, { data: "e" }] });
  });

  it("forgets each message after ttlMs, and an idle channel altogether (a new epoch, offsets from 1)", () => {
    const h = history();
    const epoch = h.position("h")?.epoch ?? "";
    h.append("h", "a");
    clock = 600;
    h.append("h", "b");
    clock = 1000; // "a" expired, "b" not
    expect(h.recover("h", { epoch, offset: 0 })).toEqual({ recovered: false, epoch, offset: 2 });
    expect(h.recover("h", { epoch, offset: 1 })).toMatchObject({ recovered: true, missed: [{ offset: 2, data: "b" }] });
    expect(h.stats()).toEqual({ channels: 1, entries: 1 });
    clock = 1600; // nothing appended for ttlMs
    h.sweep();
    expect(h.stats()).toEqual({ channels: 0, entries: 0 });
    const next = h.append("h", "c");
    expect(next?.offset).toBe(1);
    expect(next?.epoch).not.toBe(epoch);
    expect(h.recover("h", { epoch, offset: 2 })).toEqual({ recovered: false, epoch: next?.epoch, offset: 1 });
  });

  it("keeps memory to size entries per channel", () => {
    const h = history({ size: 10, ttlMs: 1000 });
    for (let i = 0; i < 1000; i++) h.append(`h${i % 7}`, String(i));
    expect(h.stats()).toEqual({ channels: 7, entries: 70 });
    const epoch = h.position("h0")?.epoch ?? "";
    const got = h.recover("h0", { epoch, offset: 143 - 10 });
    expect(got).toMatchObject({ recovered: true, offset: 143 });
    expect(got?.recovered && got.missed.map((entry) => Number(entry.data))).toEqual(Array.from({ length: 10 }, (_, i) => 7 * (133 + i)));
  });

  it("names a bad argument", () => {
    const h = history();
    expect(() => new History({ history: 3 as never })).toThrow(TypeError);
    expect(() => new History({ history: () => undefined, sweepMs: 0 })).toThrow(RangeError);
    expect(() => h.append({} as never, "a")).toThrow(TypeError);
    expect(() => h.recover("h", { epoch: "e", offset: -1 })).toThrow(/from must be/);
    expect(() => h.recover("h", { epoch: "e", offset: 0 }, 1.5)).toThrow(RangeError);
    const bad = new History({ history: () => ({ size: 0, ttlMs: 1 }) });
    made.push(bad);
    expect(() => bad.append("x", "a")).toThrow(/size: integer >= 1/);
  });
});
