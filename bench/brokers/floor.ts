/**
 * The floor of bench/brokers.ts: the least a Node process can spend to carry ws-channels' envelopes
 * through Redis. Hand-written RESP over `net`: a publishing connection whose PUBLISH commands are
 * built into one buffer per turn (a prebuilt header per channel, the envelope written in place,
 * one `write`) and whose replies are counted as lines; a subscribing connection whose messages
 * are split with no allocation but the subarray of a chunk's tail, its own echo dropped on its
 * origin's bytes. Its window of unanswered publishes also counts those not yet back as its echo:
 * with nothing else to slow it, it would publish faster than it reads, until Redis closed it. No sequence checks, no members but two counters per channel, no reconnection.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { nodeArgs, serve } from "./control.js";

const { path, names, payload } = nodeArgs();
const PREFIX = "ws-channels:s:";
const PAYLOAD_BYTES = Buffer.byteLength(payload);
const origin = randomBytes(6);
const CR = 13;
const LF = 10;

/** A bulk string's RESP: `$len\r\nbytes\r\n`. */
const bulk = (text: string): string => `$${Buffer.byteLength(text)}\r\n${text}\r\n`;

/** Per channel: PUBLISH's RESP up to the envelope, then the envelope's header and channel; `seq` is patched in a copy. */
interface Prebuilt {
  readonly head: Buffer;
  /** Where the envelope's seq is in `head`. */
  readonly seqAt: number;
  seq: number;
}
const prebuilt = new Map<string, Prebuilt>();
for (const name of names) {
  const channel = Buffer.from(name);
  const envelope = 20 + channel.length + PAYLOAD_BYTES;
  const resp = Buffer.from(`*3\r\n${bulk("PUBLISH")}${bulk(PREFIX + name)}$${envelope}\r\n`);
  const head = Buffer.alloc(resp.length + 20 + channel.length);
  resp.copy(head);
  const at = resp.length;
  head[at] = 1; // version; flags 0: text, a string channel
  origin.copy(head, at + 2);
  head.writeUInt32BE(1, at + 8); // epoch
  head.writeUInt32BE(channel.length, at + 16);
  channel.copy(head, at + 20);
  prebuilt.set(name, { head, seqAt: at + 12, seq: 0 });
}

const open = (): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect(path, () => resolve(socket));
    socket.once("error", reject);
  });
const pub = await open();
const sub = await open();

let answered = 0;
pub.on("data", (chunk: Buffer) => {
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) answered++;
});

/** This turn's commands: written once, when the turn ends. */
let turn: Buffer | undefined;
let used = 0;
const TURN_BYTES = 64 * 1024;
const flush = (): void => {
  if (turn !== undefined && used > 0) pub.write(turn.subarray(0, used));
  turn = undefined;
  used = 0;
};
let handed = 0;
function publish(name: string): void {
  const p = prebuilt.get(name) as Prebuilt;
  const size = p.head.length + PAYLOAD_BYTES + 2;
  if (turn === undefined || used + size > TURN_BYTES) {
    if (turn === undefined) process.nextTick(flush);
    else flush();
    turn = Buffer.allocUnsafe(TURN_BYTES);
  }
  const buffer = turn as Buffer;
  p.head.copy(buffer, used);
  buffer.writeUInt32BE(++p.seq, used + p.seqAt);
  used += p.head.length;
  used += buffer.write(payload, used, "utf8");
  buffer[used++] = CR;
  buffer[used++] = LF;
  handed++;
}

// The subscriber: a RESP2 push is an array of bulk strings and integers.
let received = 0;
let deliveries = 0;
/** This node's own publishes back: the window counts them, so the subscriber is never left behind. */
let echoes = 0;
let closing = false;
let subscribed = 0;
let allSubscribed = (): void => undefined;
let value = 0;
/** Reads `<digits>\r\n` at `at` (after the type byte) into `value`. @returns where the next item starts, or -1 if incomplete. */
function line(buffer: Buffer, at: number): number {
  let n = 0;
  let negative = false;
  for (let i = at; i < buffer.length; i++) {
    const c = buffer[i] as number;
    if (c === CR) {
      if (i + 1 >= buffer.length) return -1;
      value = negative ? -n : n;
      return i + 2;
    }
    if (c === 45) negative = true;
    else n = n * 10 + c - 48;
  }
  return -1;
}
/** Handles one push at `at`. @returns where the next starts, or -1 if it is not all here. */
function push(buffer: Buffer, at: number): number {
  let i = line(buffer, at + 1);
  if (i < 0) return -1;
  const count = value;
  let kind = 0;
  let data = 0;
  let size = 0;
  for (let k = 0; k < count; k++) {
    if (i >= buffer.length) return -1;
    const type = buffer[i];
    i = line(buffer, i + 1);
    if (i < 0) return -1;
    if (type === 58) continue; // ':' an integer
    size = value;
    if (i + size + 2 > buffer.length) return -1;
    if (k === 0) kind = size; // "message" has 7 bytes, "subscribe" 9
    data = i;
    i += size + 2;
  }
  if (kind === 9 && ++subscribed === names.length) allSubscribed();
  else if (kind === 7) {
    if (origin.compare(buffer, data + 2, data + 8) !== 0) {
      received++;
      deliveries += 2;
    } else echoes++;
  }
  return i;
}
let rest: Buffer | undefined;
// Redis closes a subscriber whose output buffer passes its limit (32 MB): say so, since what it would have received is then missing
sub.on("close", () => void (closing || process.stderr.write("[bench:brokers] a floor node's subscriber was closed by Redis\n")));
sub.on("data", (chunk: Buffer) => {
  const buffer = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
  let at = 0;
  while (at < buffer.length) {
    const next = push(buffer, at);
    if (next < 0) break;
    at = next;
  }
  rest = at < buffer.length ? buffer.subarray(at) : undefined;
});
const acknowledged = new Promise<void>((resolve) => {
  allSubscribed = resolve;
});
for (let i = 0; i < names.length; i += 1000) {
  const batch = names.slice(i, i + 1000);
  sub.write(`*${batch.length + 1}\r\n${bulk("SUBSCRIBE")}${batch.map((name) => bulk(PREFIX + name)).join("")}`);
}
await acknowledged;

serve(
  {
    publish,
    inFlight: () => Math.max(handed - answered, handed - echoes),
    counts: () => ({ received, lost: 0, unpublished: 0, deliveries }),
    close: async () => {
      closing = true;
      pub.end();
      sub.end();
    },
  },
  names,
);
