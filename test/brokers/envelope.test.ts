import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, MAX_ORIGIN } from "../../packages/ws-channels/src/brokers/envelope.js";

describe("the envelope", () => {
  it("round-trips origin, epoch, seq, channel (string or number, kept apart) and payload (text or binary) without JSON", () => {
    const payload = Buffer.from([0, 1, 2, 255]);
    for (const channel of ["room", "", "é🙂", 1, "1", -0.5, Number.MAX_SAFE_INTEGER]) {
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

  it("is 20 bytes of header plus the channel plus the payload", () => {
    expect(encodeEnvelope(1, 1, 1, "abc", "hello").length).toBe(20 + 3 + 5);
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
