/**
 * A ws-channels node of bench/brokers.ts: a Channels on a RedisBroker, every channel with 2 members
 * here (counters, no I/O).
 */
import { Channels } from "ws-channels";
import { RedisBroker } from "ws-channels/redis";
import { nodeArgs, serve } from "./control.js";

const { path, names, payload } = nodeArgs();
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

const stats = () => channels.stats().broker ?? { published: 0, unpublished: 0, received: 0, lost: 0 };
let handed = 0;
serve(
  {
    publish: (channel) => {
      handed++;
      void channels.broadcast(channel, payload);
    },
    inFlight: () => {
      const { published, unpublished } = broker.stats(); // the broker's own counts: no copy of the link's
      return handed - published - unpublished;
    },
    counts: () => {
      const { received, lost, unpublished } = stats();
      return { received, lost, unpublished, deliveries };
    },
    close: () => channels.close(),
  },
  names,
);
