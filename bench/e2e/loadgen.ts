/*
 * The load generator, a process of its own (forked by bench/e2e.ts, never the server's process):
 * opens C raw WebSocket clients, then client 0 publishes M messages of about 100 bytes of JSON
 * through the server, at most W ahead of the slowest client (or at a fixed rate), and every client
 * times what it gets. For socket.io the same text travels inside engine.io/socket.io packets:
 * 42["m","<text>"]. With many rooms, client i is in room floor(i / roomSize) and an extra control
 * client triggers each round ("SEQ T"): the server then publishes round SEQ to every room, and
 * each client checks that what it gets is its own room's.
 */
import { createHistogram, performance } from "node:perf_hooks";
import { RawClient } from "./client.js";
import type { Burst, FromLoadgen, ToLoadgen } from "./protocol.js";

/** Replies to the orchestrator; a reply it no longer waits for (the channel is closing) is dropped. */
const send = (message: FromLoadgen): void => {
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
};
process.on("disconnect", () => process.exit());

const CHAR_0 = 0x30;
const CHAR_2 = 0x32;
const CHAR_4 = 0x34;
// The seq, send time and room (many rooms) of a message, plain or JSON-escaped inside a socket.io event.
const FIELDS = /seq\\?":(\d+),\\?"t\\?":([\d.]+)(?:,"room":(\d+))?/;

let clients: RawClient[] = [];
let control: RawClient | undefined; // many rooms: the connection that triggers rounds
let roomSize = 0;
let socketIo = false;
let burst: ((client: RawClient, seq: number, sentAt: number, room: number) => void) | undefined;
let closedDuringBurst = 0;
const namespaceJoined = new Map<number, () => void>(); // socket.io: clients still waiting for "40"

/** Handles one message: socket.io's control packets, then the benchmark's own text. */
function onMessage(client: RawClient, buffer: Buffer, start: number, end: number): void {
  if (socketIo) {
    const kind = buffer[start];
    if (kind === CHAR_2 && end - start === 1) return client.sendText("3"); // engine.io ping -> pong
    if (kind === CHAR_0) return client.sendText("40"); // engine.io open -> connect to namespace "/"
    if (kind !== CHAR_4) return;
    if (buffer[start + 1] === CHAR_0) return namespaceJoined.get(client.index)?.();
    if (buffer[start + 1] !== CHAR_2) return;
  }
  // The fields sit at the front, so a short latin1 prefix is all that needs decoding.
  const match = FIELDS.exec(buffer.toString("latin1", start, Math.min(end, start + 80)));
  if (match) burst?.(client, Number(match[1]), Number(match[2]), match[3] === undefined ? -1 : Number(match[3]));
}

/** Opens `count` clients, at most `concurrency` handshakes at a time. */
async function connectAll(message: Extract<ToLoadgen, { type: "connect" }>): Promise<void> {
  socketIo = message.socketIo;
  roomSize = message.roomSize ?? 0;
  const pathOf = (i: number): string =>
    socketIo ? "/socket.io/?EIO=4&transport=websocket" : roomSize > 0 ? `/?room=${Math.floor(i / roomSize)}` : "/";
  clients = Array.from({ length: message.clients }, (_, i) => new RawClient(i, onMessage, () => void closedDuringBurst++));
  let next = 0;
  const openOne = async (client: RawClient): Promise<void> => {
    const joined = socketIo ? new Promise<void>((resolve) => namespaceJoined.set(client.index, resolve)) : undefined;
    await client.open(message.port, pathOf(client.index));
    await joined;
    namespaceJoined.delete(client.index);
  };
  const worker = async (): Promise<void> => {
    while (next < clients.length) await openOne(clients[next++]!);
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not all ${clients.length} clients open after ${message.timeoutMs} ms`)), message.timeoutMs);
  });
  try {
    await Promise.race([Promise.all(Array.from({ length: Math.min(message.concurrency, clients.length) }, worker)), timeout]);
    if (roomSize > 0) {
      control = new RawClient(
        -1,
        () => undefined,
        () => undefined,
      );
      await Promise.race([control.open(message.port, "/?control=1"), timeout]);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The burst: publishes M messages with a window of W and measures every delivery. */
function run(message: Extract<ToLoadgen, { type: "run" }>): Promise<Burst> {
  const C = clients.length;
  const M = message.messages;
  const publisher = control ?? clients[0]!;
  const seen = new Uint8Array(C * M); // (client, seq) already received: duplicates are not deliveries
  const highest = new Int32Array(C).fill(-1);
  const receivedBy = new Uint32Array(M); // how many clients have message seq
  const latency = createHistogram(); // microseconds
  let sent = 0;
  let complete = 0; // messages 0 .. complete-1 reached every client
  let delivered = 0;
  let outOfOrder = 0;
  let duplicates = 0;
  let misrouted = 0;
  let firstSend = 0;
  let lastDelivery = 0;
  let lastProgress = performance.now();
  closedDuringBurst = 0;
  const cpu = process.cpuUsage();

  const one = (): void => {
    if (control !== undefined) {
      publisher.sendText(`${sent} ${performance.now().toFixed(3)}`); // the server builds each room's message
    } else {
      const head = `{"seq":${sent},"t":${performance.now().toFixed(3)},"pad":"`;
      const text = `${head}${"x".repeat(Math.max(0, 98 - head.length))}"}`;
      publisher.sendText(socketIo ? `42${JSON.stringify(["m", text])}` : text);
    }
    if (sent++ === 0) firstSend = performance.now();
  };
  const window = Math.max(message.window, message.burst);
  const rate = message.rate;
  let paced: NodeJS.Timeout | undefined;
  /** Fixed rate: sends every message due by now, then sleeps until the next one is due. */
  const pace = (): void => {
    const interval = 1000 / rate!;
    const start = firstSend || performance.now();
    const due = Math.min(M, Math.floor((performance.now() - start) / interval) + 1);
    while (sent < due) one();
    if (sent < M) paced = setTimeout(pace, Math.max(0, start + sent * interval - performance.now()));
  };
  const publish = (): void => {
    if (rate !== undefined) return;
    // Messages go out in groups of `burst`, a group in one turn and one write; message i goes out
    // only once every client has message i - W.
    for (
      let group = Math.min(message.burst, M - sent);
      sent < M && sent + group <= complete + window;
      group = Math.min(message.burst, M - sent)
    ) {
      publisher.batch(() => {
        for (let k = 0; k < group; k++) one();
      });
    }
  };

  return new Promise((resolve) => {
    const finish = (stalled: boolean): void => {
      clearInterval(watchdog);
      clearTimeout(paced);
      burst = undefined;
      const used = process.cpuUsage(cpu);
      const seconds = (lastDelivery - firstSend) / 1000;
      resolve({
        expected: C * M,
        delivered,
        lost: C * M - delivered,
        outOfOrder,
        duplicates,
        closed: closedDuringBurst,
        seconds,
        perSecond: seconds > 0 ? delivered / seconds : 0,
        p50Ms: delivered ? latency.percentile(50) / 1000 : NaN,
        p99Ms: delivered ? latency.percentile(99) / 1000 : NaN,
        p999Ms: delivered ? latency.percentile(99.9) / 1000 : NaN,
        misrouted,
        cpuUs: used.user + used.system,
        stalled,
      });
    };
    burst = (client, seq, sentAt, room) => {
      if (seq >= M) return;
      if (roomSize > 0 && room !== Math.floor(client.index / roomSize)) return void misrouted++;
      const key = client.index * M + seq;
      if (seen[key]) return void duplicates++;
      seen[key] = 1;
      const now = performance.now();
      latency.record(Math.max(1, Math.round((now - sentAt) * 1000)));
      if (seq < highest[client.index]!) outOfOrder++;
      else highest[client.index] = seq;
      lastDelivery = lastProgress = now;
      if (++delivered === C * M) return finish(false);
      if (++receivedBy[seq] === C) {
        while (complete < sent && receivedBy[complete] === C) complete++;
        publish();
      }
    };
    // Bounded: stop after stallMs without a new delivery, or maxMs in all, and report what is missing.
    const started = performance.now();
    const watchdog = setInterval(() => {
      const now = performance.now();
      if (now - lastProgress > message.stallMs || now - started > message.maxMs) finish(true);
    }, 100);
    if (rate === undefined) publish();
    else pace();
  });
}

process.on("message", (message: ToLoadgen) => {
  const fail = (error: unknown): void => send({ type: "failed", reason: error instanceof Error ? error.message : String(error) });
  if (message.type === "connect") {
    const started = performance.now();
    connectAll(message).then(() => send({ type: "connected", ms: performance.now() - started }), fail);
  }
  if (message.type === "run") run(message).then((result) => send({ type: "done", burst: result }), fail);
  if (message.type === "close") {
    for (const client of clients) client.reset();
    control?.reset();
    control = undefined;
    send({ type: "closed" });
  }
});
