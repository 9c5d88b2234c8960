import { describe, expect, it } from "vitest";
import { PublishHeaders, publishHeader, RespTurn } from "../../packages/ws-channels/src/brokers/resp-turn.js";

/** PUBLISH as RESP spells it (https://redis.io/docs/latest/develop/reference/protocol-spec/), built the plain way. */
const publish = (name: string, message: Buffer): Buffer =>
  Buffer.concat([
    Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$${Buffer.byteLength(name)}\r\n${name}\r\n$${message.length}\r\n`),
    message,
    Buffer.from("\r\n"),
  ]);

describe("a turn's PUBLISH commands", () => {
  it("are RESP byte for byte, whatever the message's length (copied or not) and the channel's characters", () => {
    const turn = new RespTurn();
    const expected: Buffer[] = [];
    const headers = new PublishHeaders();
    for (const name of ["room", "é🙂 日本", "é".repeat(300)]) {
      expect(headers.of(name)).toBe(publishHeader(name));
      for (const length of [0, 1, 9, 10, 11, 99, 100, 4095, 4096, 4097, 9999, 10_000, 65_535, 65_536, 1_000_000]) {
        const message = Buffer.alloc(length, length % 251);
        turn.publish(headers.of(name), message);
        expected.push(publish(name, message));
      }
    }
    expect(Buffer.concat(turn.take()).equals(Buffer.concat(expected))).toBe(true);
    expect(turn.take()).toEqual([]);
  });
});
