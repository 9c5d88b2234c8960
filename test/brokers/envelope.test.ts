import { describe, expect, it } from "vitest";
import {
  encodeBatch,
  encodeEnvelope,
  epochOf,
  MAX_ORIGIN,
  originOf,
  sentBy,
  seqOf,
  splitBatch,
} from "../../packages/ws-channels/src/brokers/envelope.js";
import { decodeEnvelope } from "./decode.js";

describe("the envelope", () => {
  it("round-trips origin, epoch, seq, channel (string or number, kept apart) and payload (text or binary) without JSON", () => {
    const payload = Buffer.from([0, 1, 2, 255]);
    // ASCII names up to 64 units are written in JS, longer or other ones by the runtime
    for (const channel of [
      "room",
      "",
      "é🙂",
      "\x7f~",
      "a".repeat(64),
      "b".repeat(65),
      `${"c".repeat(63)}é`,
      1,
      "1",
      -0.5,
      Number.MAX_SAFE_INTEGER,
    ]) {
      for (const message of ["hé 🙂", "", payload, new Uint8Array(0)]) {
        const bytes = encodeEnvelope(MAX_ORIGIN, 0xffffffff, 7, channel, message);
        const decoded = decodeEnvelope(bytes);
        expect(decoded).toMatchObject({ origin: MAX_ORIGIN, epoch: 0xffffffff, seq: 7, channel, binary: typeof message !== "string" });
        expect(decoded?.payload.equals(typeof message === "string" ? Buffer.from(message) : Buffer.from(message))).toBe(true);
        // the payload is a view of the envelope: its bytes as given, at its end
        expect(bytes.subarray(bytes.length - (decoded?.payload.length ?? -1)).equals(decoded?.payload ?? Buffer.alloc(1))).toBe(true);
      }
    }
    expect(decodeEnvelope(encodeEnvelope(1, 1, 1, 1, "x"))?.channel).toBe(1);
    expect(decodeEnvelope(encodeEnvelope(1, 1, 1, "1", "x"))?.channel).toBe("1");
  });

  it("writes and reads its integers big-endian, byte for byte as Buffer's own methods, at every edge of their ranges", () => {
    const origins = [0, 1, 0xff, 0x7fff_ffff, 0xffff_ffff, 2 ** 32, 2 ** 32 + 1, 2 ** 47, 0x1234_5678_9abc, MAX_ORIGIN];
    const numbers = [0, 1, 0xff, 0x100, 0x3fff_ffff, 0x4000_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
    for (const origin of origins)
      for (const [i, epoch] of numbers.entries()) {
        const seq = numbers[numbers.length - 1 - i] as number;
        const bytes = encodeEnvelope(origin, epoch, seq, "room", "x");
        const expected = Buffer.alloc(16);
        expected.writeUIntBE(origin, 2, 6);
        expected.writeUInt32BE(epoch, 8);
        expected.writeUInt32BE(seq, 12);
        expect(bytes.subarray(2, 16).equals(expected.subarray(2, 16))).toBe(true);
        expect([originOf(bytes), epochOf(bytes), seqOf(bytes)]).toEqual([origin, epoch, seq]);
      }
  });

  it("is 20 bytes of header plus the channel plus the payload", () => {
    expect(encodeEnvelope(1, 1, 1, "abc", "hello").length).toBe(20 + 3 + 5);
    // a channel's length past one byte and past two
    for (const channel of ["é".repeat(200), "x".repeat(70_000)]) {
      const bytes = encodeEnvelope(1, 1, 1, channel, "hello");
      expect(bytes.length).toBe(20 + Buffer.byteLength(channel) + 5);
      expect(decodeEnvelope(bytes)).toMatchObject({ channel, payload: Buffer.from("hello") });
    }
    expect(encodeEnvelope(1, 1, 1, 42, Buffer.alloc(100)).length).toBe(20 + 8 + 100);
  });

  it("refuses what is not an envelope: another version, truncated, a bad number channel", () => {
    const good = encodeEnvelope(1, 1, 1, "abc", "hello");
    expect(decodeEnvelope(good.subarray(0, 19))).toBeUndefined();
    expect(decodeEnvelope(good.subarray(0, 22))).toBeUndefined();
    const other = Buffer.from(good);
    other[0] = 2;
    expect(decodeEnvelope(other)).toBeUndefined();
    const badNumber = Buffer.from(good);
    badNumber[1] = 0b10; // says number, but the channel is 3 bytes
    expect(decodeEnvelope(badNumber)).toBeUndefined();
  });
});

describe("the batch", () => {
  it("carries envelopes of one origin, split back byte for byte as views; its first 8 bytes tell the origin as an envelope's do", () => {
    // lengths past one byte and past two: "é" is 2 bytes, so the third envelope is over 64 KiB
    const envelopes = ["a", "", "é".repeat(300), "é".repeat(40_000)].map((text, i) => encodeEnvelope(12345, 1, i + 1, "room", text));
    const batch = encodeBatch(envelopes);
    expect(batch.length).toBe(8 + envelopes.reduce((sum, e) => sum + 4 + e.length, 0));
    const got: Buffer[] = [];
    expect(splitBatch(batch, (envelope) => got.push(envelope))).toBe(true);
    expect(got.map((envelope) => envelope.toString("hex"))).toEqual(envelopes.map((envelope) => envelope.toString("hex")));
    expect(got[0]?.buffer).toBe(batch.buffer); // a view, not a copy
    for (const bytes of [batch, envelopes[0] as Buffer]) {
      expect(sentBy(bytes, 12345)).toBe(true);
      expect(sentBy(bytes, 12346)).toBe(false);
    }
    // not a batch: handed on whole
    const single: Buffer[] = [];
    expect(splitBatch(envelopes[0] as Buffer, (envelope) => single.push(envelope))).toBe(true);
    expect(single).toEqual([envelopes[0]]);
  });

  it("a broken batch is refused from the break on: truncated, a length past the end, nothing in it; other versions are nobody's echo", () => {
    const batch = encodeBatch([encodeEnvelope(1, 1, 1, "room", "one"), encodeEnvelope(1, 1, 2, "room", "two")]);
    const count = (bytes: Buffer): [boolean, number] => {
      let n = 0;
      return [splitBatch(bytes, () => void n++), n];
    };
    expect(count(batch.subarray(0, batch.length - 1))).toEqual([false, 1]);
    const long = Buffer.from(batch);
    long.writeUInt32BE(1000, 8);
    expect(count(long)).toEqual([false, 0]);
    expect(count(batch.subarray(0, 8))).toEqual([false, 0]);
    const other = Buffer.from(batch);
    other[0] = 3;
    expect(sentBy(other, 1)).toBe(false);
    expect(sentBy(batch.subarray(0, 7), 1)).toBe(false);
  });
});
