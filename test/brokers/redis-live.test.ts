import { describe, expect, it } from "vitest";
import { compareAscii } from "../../packages/ws-channels/src/brokers/ascii.js";
import { LiveSet } from "../../packages/ws-channels/src/brokers/redis-live.js";
import { publishHeader } from "../../packages/ws-channels/src/brokers/resp-turn.js";
import type { ChannelId } from "../../packages/ws-channels/src/types.js";

const nameOf = (channel: ChannelId): string => `p:${typeof channel === "number" ? "n" : "s"}:${channel}`;

/** A message's bytes as the subscriber holds them: the name somewhere inside a larger chunk. */
function inChunk(name: string): { bytes: Buffer; start: number; end: number } {
  const bytes = Buffer.concat([Buffer.from("$7\r\nmessage\r\n$"), Buffer.from(name), Buffer.from("\r\n$5\r\nhello\r\n")]);
  const start = 14;
  return { bytes, start, end: start + Buffer.byteLength(name) };
}

const find = (live: LiveSet<unknown>, name: string) => {
  const { bytes, start, end } = inChunk(name);
  return live.find(bytes, start, end);
};

describe("the Redis broker's live set", () => {
  it("finds a live channel and its handle by its name's bytes, ASCII or not, and nothing else", () => {
    const live = new LiveSet(nameOf);
    const names: ChannelId[] = ["room", "é", "a\u{1F600}", "日本", 7, 1.5, ""];
    names.forEach((channel, i) => {
      expect(live.add(channel, { i }).name).toBe(nameOf(channel));
    });
    names.forEach((channel, i) => {
      expect(find(live, nameOf(channel))).toMatchObject({ channel, handle: { i } });
    });
    for (const name of ["p:s:roo", "p:s:rooms", "p:s:Room", "p:n:room", "p:s:7", "p:s:e", "p:s:a\u{1F601}", "p:s:日"])
      expect(find(live, name)).toBeUndefined();
    expect(live.size).toBe(names.length);
    expect(live.names().sort()).toEqual(names.map(nameOf).sort());
  });

  it("keeps the last handle of a channel added again, and forgets a deleted channel", () => {
    const live = new LiveSet(nameOf);
    live.add("room", "first");
    live.add("room", "second");
    expect(live.size).toBe(1);
    expect(find(live, "p:s:room")?.handle).toBe("second");
    expect(live.delete("room")).toBe("p:s:room");
    expect(live.delete("room")).toBeUndefined();
    expect(find(live, "p:s:room")).toBeUndefined();
    expect(live.size).toBe(0);
  });

  it("tells apart names whose hashes are alike, whichever of them is deleted", () => {
    // "c693596" and "c1170850" have the same hash from FNV-1a's own seed: here they are the whole Redis name
    const whole = new LiveSet((channel) => String(channel), 0x811c9dc5);
    for (const [first, second] of [
      ["c693596", "c1170850"],
      ["c1170850", "c693596"],
    ] as const) {
      whole.add(first, 1);
      whole.add(second, 2); // the head of the chain
      expect(find(whole, first)?.handle).toBe(1);
      expect(find(whole, second)?.handle).toBe(2);
      whole.delete(first); // behind the head
      expect(find(whole, first)).toBeUndefined();
      expect(find(whole, second)?.handle).toBe(2);
      whole.add(first, 3); // now the head
      whole.delete(first);
      expect(find(whole, second)?.handle).toBe(2);
      whole.delete(second);
      expect(whole.size).toBe(0);
      expect(find(whole, second)).toBeUndefined();
    }
  });

  it("finds every channel as the buckets grow past their first 16 and shrink back, with deletes among them", () => {
    const live = new LiveSet(nameOf);
    const channels = Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? i : `room-${i}`));
    channels.forEach((channel, i) => {
      live.add(channel, i);
    });
    channels.forEach((channel, i) => {
      expect(find(live, nameOf(channel))?.handle).toBe(i);
    });
    channels.forEach((channel, i) => {
      if (i % 2 === 0) live.delete(channel);
    });
    channels.forEach((channel, i) => {
      expect(find(live, nameOf(channel))?.handle).toBe(i % 2 === 0 ? undefined : i);
    });
    expect(live.size).toBe(500);
    // down to 10: the buckets halve on the way, and what is left is still found
    channels.forEach((channel, i) => {
      if (i % 2 === 1 && i > 20) live.delete(channel);
    });
    expect(live.size).toBe(10);
    channels.forEach((channel, i) => {
      expect(find(live, nameOf(channel))?.handle).toBe(i % 2 === 1 && i < 20 ? i : undefined);
    });
    live.clear();
    live.add("room", "again");
    expect(find(live, "p:s:room")?.handle).toBe("again");
    expect(find(live, nameOf(channels[1] as ChannelId))).toBeUndefined();
  });

  it("gives PUBLISH's header of a channel, live or not", () => {
    const live = new LiveSet(nameOf);
    live.add("room", undefined);
    expect(live.header("room")).toBe(publishHeader("p:s:room"));
    expect(live.header("other")).toBe(publishHeader("p:s:other"));
    expect(live.header(3)).toBe(publishHeader("p:n:3"));
    live.clear();
    expect(live.size).toBe(0);
    expect(find(live, "p:s:room")).toBeUndefined();
  });
});

describe("compareAscii", () => {
  const bytes = Buffer.from("xxabcxx");
  it("answers for an ASCII text, and leaves a text past ASCII to a UTF-8 compare", () => {
    expect(compareAscii(bytes, 2, 5, "abc")).toBe(true);
    expect(compareAscii(bytes, 2, 5, "abd")).toBe(false);
    expect(compareAscii(bytes, 2, 5, "ab")).toBe(false);
    expect(compareAscii(bytes, 2, 5, "abcd")).toBe(false);
    expect(compareAscii(bytes, 2, 2, "")).toBe(true);
    expect(compareAscii(bytes, 2, 5, "xé")).toBe(false); // differs before the unit past ASCII
    expect(compareAscii(bytes, 2, 5, "aé")).toBeUndefined();
    expect(compareAscii(Buffer.from("é"), 0, 2, "é")).toBeUndefined();
  });
});
