import { describe, expect, it } from "vitest";
import { History } from "../packages/ws-channels/src/index.js";

/** Runs `test` on a History whose channels starting with "h" keep 3 messages for 1000 ms, on a clock it moves. */
function withHistory(test: (h: History<string>, clock: { now: number }) => void): void {
  const clock = { now: 0 };
  const h = new History<string>({
    history: (channel) => (String(channel).startsWith("h") ? { size: 3, ttlMs: 1000 } : undefined),
    now: () => clock.now,
  });
  try {
    test(h, clock);
  } finally {
    h.close();
  }
}

describe("History.read (what the server API's history returns)", () => {
  it("reads after an offset, from the oldest kept when the offset is older, at most max", () =>
    withHistory((h) => {
      for (const data of ["a", "b", "c", "d", "e"]) h.append("h1", data);
      const { epoch } = h.position("h1") ?? { epoch: "" };
      expect(h.read("h1")).toEqual({
        epoch,
        offset: 5,
        entries: [
          { offset: 3, data: "c" },
          { offset: 4, data: "d" },
          { offset: 5, data: "e" },
        ],
      });
      expect(h.read("h1", 3)).toEqual({
        epoch,
        offset: 5,
        entries: [
          { offset: 4, data: "d" },
          { offset: 5, data: "e" },
        ],
      });
      expect(h.read("h1", 0, 1)).toEqual({ epoch, offset: 5, entries: [{ offset: 3, data: "c" }] });
      expect(h.read("h1", 2, 0)).toEqual({ epoch, offset: 5, entries: [] });
      expect(h.read("h1", 9)).toEqual({ epoch, offset: 5, entries: [] });
      expect(h.read("other")).toBeUndefined();
    }));

  it("leaves out what expired, and refuses a bad offset or max", () =>
    withHistory((h, clock) => {
      h.append("h1", "a");
      clock.now = 600;
      h.append("h1", "b");
      clock.now = 1100;
      expect(h.read("h1")?.entries).toEqual([{ offset: 2, data: "b" }]);
      expect(() => h.read("h1", -1)).toThrow(RangeError);
      expect(() => h.read("h1", 0, 1.5)).toThrow(/max must be an integer >= 0, got the number 1.5/);
    }));
});
