/**
 * One node of the broker throughput suite (a child process of bench/brokers.ts): a Channels on a
 * RedisBroker, `channels` channels each with 2 members here (counters, no I/O), publishing to its
 * channels in turn while the parent says so, with at most WINDOW publishes awaiting Redis.
 */
import { Channels } from "ws-channels";
import { RedisBroker } from "ws-channels/redis";

const WINDOW = 4096;
const [path = "", channelArg = "1000", payloadArg = "100"] = process.argv.slice(2);
const names = Array.from({ length: Number(channelArg) }, (_, i) => `c${i}`);
const payload = "x".repeat(Number(payloadArg));
let deliveries = 0;
const member = (): { send(): void } => ({
  send: () => {
    deliveries++;
  },
});

const broker = new RedisBroker({ url: path });
const channels = new Channels({ broker });
await new Promise((resolve) => broker.once("up", resolve));
for (const name of names) {
  channels.join(name, member());
  channels.join(name, member());
}
await Promise.all(names.map((name) => channels.subscribed(name)));

let publishing = false;
let sent = 0;
function pump(): void {
  if (!publishing) return;
  const { published = 0, unpublished = 0 } = channels.stats().broker ?? {};
  for (let n = 0; n < 256 && sent - published - unpublished < WINDOW; n++) {
    void channels.broadcast(names[sent % names.length] as string, payload);
    sent++;
  }
  setImmediate(pump);
}

process.on("message", (message: { op: string }) => {
  if (message.op === "start") {
    publishing = true;
    setImmediate(pump);
  } else if (message.op === "stop") {
    publishing = false;
  } else if (message.op === "stats") {
    const cpu = process.cpuUsage();
    process.send?.({ sent, deliveries, cpuUs: cpu.user + cpu.system, ...channels.stats().broker });
  } else if (message.op === "exit") {
    void channels.close().then(() => process.exit(0));
  }
});
process.send?.({ ready: true });
