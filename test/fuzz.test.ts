import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { WsClient } from "./helpers.js";

const MAX_FRAME = 4096;
const MAX_NAME = 32;
const CASES = 10_000;
const LANES = 4;
const ROOMS = ["a", "__proto__", "constructor"];

/** One generated input: the frame(s) a client sends and the documented answer it must get. */
interface Case {
  frames: (string | Buffer)[]; // more than one: the fragments of one message
  binary?: boolean;
  expect: { close: number; reasons?: string[] } | { reply: unknown };
}

const invalid = { close: 3000, reasons: ["invalid payload"] };
const deep = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);
// Names in code points, as the server counts them; never "a", the room the deep says are sent to.
const name = fc.string({ unit: "binary", minLength: 1, maxLength: MAX_NAME }).filter((n) => n !== "a");
const tooLong = fc.string({ unit: "grapheme-ascii", minLength: MAX_NAME + 1, maxLength: 200 });
// with "req" (checked by its own family below) an object may still be a command
const isCommandShape = (keys: string[]): boolean =>
  keys.includes("req") || ["join", "leave", "refresh", "say,to", "to,say", "targets,payload", "payload,targets"].includes(keys.join(","));

const families: fc.Arbitrary<Case>[] = [
  // invalid UTF-8 in a text frame: ws closes 1007 (RFC 6455 §8.1)
  fc
    .uint8Array({ minLength: 0, maxLength: 64 })
    .map((bytes) => ({ frames: [Buffer.concat([Buffer.from(bytes), Buffer.from([0xff, 0xfe])])], expect: { close: 1007 } })),
  // not JSON
  fc.string().map((text) => ({ frames: [`{${text}`], expect: invalid })),
  // JSON that is not an object
  fc
    .oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string(), fc.array(fc.jsonValue(), { maxLength: 5 }))
    .map((value) => ({ frames: [JSON.stringify(value) ?? "null"], expect: invalid })),
  // objects of another shape
  fc
    .dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
    .filter((object) => !isCommandShape(Object.keys(object)))
    .map((object) => ({ frames: [JSON.stringify(object)], expect: invalid })),
  // a join or leave whose channel is not a good name: a number (huge ones too), empty, too long, an object
  fc
    .tuple(
      fc.constantFrom("join", "leave"),
      fc.oneof(
        fc.constantFrom("1e308", "-1e308", "1e400", "18446744073709551616", "-0", "0", '""', "{}", "[]", "null", "true"),
        tooLong.map((s) => JSON.stringify(s)),
      ),
    )
    .map(([verb, raw]) => ({ frames: [`{"${verb}": ${raw}}`], expect: invalid })),
  // __proto__ and constructor as extra keys: JSON.parse makes them own properties, so the shape is wrong
  fc.tuple(name, fc.constantFrom("__proto__", "constructor", "prototype", "to")).map(([channel, key]) => ({
    frames: [`{"join": ${JSON.stringify(channel)}, "${key}": {"polluted": true}}`],
    expect: invalid,
  })),
  // odd but valid channel names, __proto__ and constructor among them: joined, connection kept
  fc
    .oneof(name, fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "😀".repeat(MAX_NAME)))
    .map((channel) => ({ frames: [JSON.stringify({ join: channel })], expect: { reply: { joined: channel } } })),
  // a join with a req: echoed when it is a string of at most 64 code points or a finite number, else invalid
  fc
    .tuple(name, fc.oneof(fc.string({ unit: "binary", maxLength: 64 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer()))
    .map(([channel, req]) => ({
      frames: [JSON.stringify({ req, join: channel })],
      expect: { reply: { joined: channel, req } },
    })),
  fc
    .tuple(
      name,
      fc.oneof(
        fc.string({ unit: "binary", minLength: 65, maxLength: 100 }).map((req) => JSON.stringify(req)),
        fc.constantFrom("1e400", "-1e400", "null", "true", "{}", "[1]"),
      ),
    )
    .map(([channel, raw]) => ({ frames: [`{"join": ${JSON.stringify(channel)}, "req": ${raw}}`], expect: invalid })),
  // say to a channel the client is not in, with a deeply nested payload
  fc.integer({ min: 1, max: 1500 }).map((depth) => ({
    frames: [`{"say": ${deep(depth)}, "to": "a"}`],
    expect: { close: 3000, reasons: ["cannot send to channel"] },
  })),
  // targets: huge and negative numbers are fine (unknown ids); objects, Infinity or a string are not
  fc
    .array(
      fc.oneof(
        fc.constantFrom(1e308, -1e308, 2 ** 64, -0),
        fc.string({ maxLength: 6 }).map((s) => `zz${s}`),
      ),
      { minLength: 1, maxLength: 5 },
    )
    .map((targets) => ({
      frames: [JSON.stringify({ targets, payload: 1 })],
      expect: { reply: { error: "unknown targets", targets: targets.map((t) => (Object.is(t, -0) ? 0 : t)) } },
    })),
  fc
    .constantFrom(
      '{"targets": [{}], "payload": 1}',
      '{"targets": "alice", "payload": 1}',
      '{"targets": [1e400], "payload": 1}',
      '{"targets": [[]], "payload": 1}',
    )
    .map((frame) => ({ frames: [frame], expect: invalid })),
  // a channel name or target id ending in a lone surrogate (JSON's \uD800 escape), which UTF-8 cannot carry to another node
  fc
    .tuple(
      fc.string({ unit: "binary", maxLength: MAX_NAME - 1 }),
      fc.integer({ min: 0xd800, max: 0xdfff }),
      fc.constantFrom("join", "leave", "to", "targets"),
    )
    .map(([base, unit, key]) => {
      const bad = `${JSON.stringify(base).slice(0, -1)}\\u${unit.toString(16)}"`;
      const frame =
        key === "to" ? `{"say": 1, "to": ${bad}}` : key === "targets" ? `{"targets": [${bad}], "payload": 1}` : `{"${key}": ${bad}}`;
      return { frames: [frame], expect: invalid };
    }),
  // binary frames
  fc.uint8Array({ minLength: 0, maxLength: 128 }).map((bytes) => ({ frames: [Buffer.from(bytes)], binary: true, expect: invalid })),
  // fragmented frames: a valid join in pieces is joined; broken JSON in pieces is invalid
  // (split as UTF-8 bytes: a character may straddle two fragments, as on the wire)
  fc.tuple(name, fc.integer({ min: 2, max: 5 }), fc.boolean()).map(([channel, pieces, broken]) => {
    const bytes = Buffer.from(broken ? `{"join": ${JSON.stringify(channel)}` : JSON.stringify({ join: channel }));
    const size = Math.ceil(bytes.length / pieces);
    const frames = Array.from({ length: pieces }, (_, i) => bytes.subarray(i * size, (i + 1) * size)).filter(
      (f, i) => i === 0 || f.length > 0,
    );
    return { frames, expect: broken ? invalid : { reply: { joined: channel } } };
  }),
  // over the size limit: ws closes 1009
  fc
    .integer({ min: MAX_FRAME + 1, max: MAX_FRAME * 4 })
    .map((size) => ({ frames: [JSON.stringify({ say: "x".repeat(size), to: "a" })], expect: { close: 1009 } })),
];

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({
    port: 0,
    tcpPort: 0,
    maxFrameSize: MAX_FRAME,
    maxChannelLength: MAX_NAME,
    maxMessagesPerSecond: 1_000_000,
    maxConnectionsPerIp: 1_000_000,
    maxChannelsPerConnection: 1_000_000,
  });
});
afterAll(() => server.close());

const url = (): string => `ws://127.0.0.1:${server.ws.port}/`;

/** Sends every case of one lane, one at a time, opening a new connection after each close. */
async function lane(cases: Case[]): Promise<{ closes: number; mismatches: string[] }> {
  let client = await WsClient.open(url());
  let closes = 0;
  const mismatches: string[] = [];
  for (const c of cases) {
    const [first, ...rest] = c.frames;
    if (rest.length === 0) client.ws.send(first!, { binary: c.binary === true });
    else {
      c.frames.forEach((frame, i) => {
        client.ws.send(frame, { binary: false, fin: i === c.frames.length - 1 });
      });
    }
    if ("reply" in c.expect) {
      let got = await client.next();
      while ((got as { say?: unknown }).say !== undefined) got = await client.next(); // a room it joined speaks
      if (JSON.stringify(got) !== JSON.stringify(c.expect.reply))
        mismatches.push(`${JSON.stringify(c.frames)}: got ${JSON.stringify(got)}`);
      continue;
    }
    const { code, reason } = await client.closedBy();
    closes++;
    if (code !== c.expect.close || (c.expect.reasons && !c.expect.reasons.includes(reason))) {
      mismatches.push(`${JSON.stringify(c.frames).slice(0, 200)}: closed ${code} ${reason}, expected ${JSON.stringify(c.expect)}`);
    }
    client = await WsClient.open(url());
  }
  await client.close();
  return { closes, mismatches };
}

describe("fuzz: 10,000 generated frames from several clients", () => {
  it("answers every bad frame with its documented close code, and a healthy member loses nothing", async () => {
    const cases = fc.sample(fc.oneof(...families), { numRuns: CASES, seed: 20261122 });
    const [member, publisher] = [await WsClient.open(url()), await WsClient.open(url())];
    for (const c of [member, publisher]) {
      for (const room of ROOMS) c.send({ join: room });
      for (const room of ROOMS) expect(await c.next()).toEqual({ joined: room });
    }
    // The publisher says 300 things to the three rooms while the fuzz runs.
    let said = 0;
    const sent: string[] = [];
    const publishing = (async () => {
      for (; said < 300; said++) {
        const say = `m${said}`;
        sent.push(say);
        publisher.send({ say, to: ROOMS[said % ROOMS.length] });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const results = await Promise.all(Array.from({ length: LANES }, (_, k) => lane(cases.filter((_, i) => i % LANES === k))));
    await publishing;

    for (const c of [member, publisher]) {
      const got: string[] = [];
      for (let i = 0; i < sent.length; i++) got.push(((await c.next()) as { say: string }).say);
      expect(got).toEqual(sent); // every one, in order, none lost or duplicated
    }
    expect(results.flatMap((r) => r.mismatches)).toEqual([]);
    const closes = results.reduce((n, r) => n + r.closes, 0);
    console.log(
      `fuzz: ${cases.length} frames, ${closes} bad-frame closes, 0 mismatches, ${sent.length} messages to a healthy member, 0 lost`,
    );

    // Still serving: a new client joins and gets an answer.
    const late = await WsClient.open(url());
    late.send({ join: "after" });
    expect(await late.next()).toEqual({ joined: "after" });
    await Promise.all([late.close(), member.close(), publisher.close()]);
  }, 240_000);
});
