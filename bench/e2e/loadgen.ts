/*
 * The load generator, a process of its own (forked by bench/e2e.ts, never the server's process):
 * opens C raw WebSocket clients, then client 0 publishes M messages of about 100 bytes of JSON
 * through the server, at most W ahead of the slowest client, and every client times what it gets.
 * For socket.io the same text travels inside engine.io/socket.io packets: 42["m","<text>"].
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
// The seq and send time of a message, plain or JSON-escaped inside a socket.io event.
const FIELDS = /seq\\?":(\d+),\\?"t\\?":([\d.]+)/;

let clients: RawClient[] = [];
let socketIo = false;
let burst: ((client: RawClient, seq: number, sentAt: number) => void) | undefined;
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
  if (match) burst?.(client, Number(match[1]), Number(match[2]));
}

/** Opens `count` clients, at most `concurrency` handshakes at a time. */
async function connectAll(message: Extract<ToLoadgen, { type: "connect" }>): Promise<void> {
  socketIo = message.socketIo;
  const path = socketIo ? "/socket.io/?EIO=4&transport=websocket" : "/";
  clients = Array.from({ length: message.clients }, (_, i) => new RawClient(i, onMessage, () => void closedDuringBurst++));
  let next = 0;
  const openOne = async (client: RawClient): Promise<void> => {
    const joined = socketIo ? new Promise<void>((resolve) => namespaceJoined.set(client.index, resolve)) : undefined;
    await client.open(message.port, path);
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
  } finally {
    clearTimeout(timer);
  }
}

/** The burst: publishes M messages with a window of W and measures every delivery. */
function run(message: Extract<ToLoadgen, { type: "run" }>): Promise<Burst> {
  const C = clients.length;
  const M = message.messages;
  const publisher = clients[0]!;
  const seen = new Uint8Array(C * M); // (client, seq) already received: duplicates are not deliveries
  const highest = new Int32Array(C).fill(-1);
  const receivedBy = new Uint32Array(M); // how many clients have message seq
  const latency = createHistogram(); // microseconds
  let sent = 0;
  let complete = 0; // messages 0 .. complete-1 reached every client
  let delivered = 0;
  let outOfOrder = 0;
  let duplicates = 0;
  let firstSend = 0;
  let lastDelivery = 0;
  let lastProgress = performance.now();
  closedDuringBurst = 0;
  const cpu = process.cpuUsage();

  const one = (): void => {
    const head = `{"seq":${sent},"t":${performance.now().toFixed(3)},"pad":"`;
    const text = `${head}${"x".repeat(Math.max(0, 98 - head.length))}"}`;
    publisher.sendText(socketIo ? `42${JSON.stringify(["m", text])}` : text);
    if (sent++ === 0) firstSend = performance.now();
  };
  const window = Math.max(message.window, message.burst);
  const publish = (): void => {
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
        cpuUs: used.user + used.system,
        stalled,
      });
    };
    burst = (client, seq, sentAt) => {
      if (seq >= M) return;
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
    publish();
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
    send({ type: "closed" });
  }
});
