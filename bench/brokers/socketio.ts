/**
 * A socket.io node of bench/brokers.ts: a socket.io 4 server with @socket.io/redis-adapter (on
 * ioredis), every channel a room with 2 members here. A member is what socket.io's adapter writes
 * to (`client.writeToEngine`), a counter with no engine behind it, as ws-channels' members are
 * counters: what is measured is the adapter's path, not WebSockets. The adapter publishes without
 * waiting, so its publishes are counted here to keep the same window of unanswered ones.
 */
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { nodeArgs, serve } from "./control.js";

const { path, names, payload } = nodeArgs();
const pub = new Redis(path);
const sub = new Redis(path);
let handed = 0;
let answered = 0;
const publish = pub.publish.bind(pub);
const count = (): void => {
  answered++;
};
pub.publish = ((channel: string, message: Buffer) => {
  const reply = publish(channel, message);
  void reply.then(count, count);
  return reply;
}) as typeof pub.publish;

const io = new Server({ adapter: createAdapter(pub, sub) });
const nsp = io.of("/");
let deliveries = 0;
const client = {
  writeToEngine: () => {
    deliveries += 1;
  },
};
for (const name of names) {
  for (const id of [`${name}-a`, `${name}-b`]) {
    // a socket as the adapter sees one: its id in the namespace, its client to write to
    (nsp.sockets as Map<string, unknown>).set(id, { id, client });
    void nsp.adapter.addAll(id, new Set([name]));
  }
}
await Promise.all(
  [pub, sub].map((connection) => (connection.status === "ready" ? undefined : new Promise((r) => connection.once("ready", r)))),
);
// the adapter's PSUBSCRIBE is in once a PING after it is answered on the same connection
await sub.ping();
serve(
  {
    publish: (channel) => {
      handed++;
      nsp.to(channel).emit("message", payload);
    },
    inFlight: () => handed - answered,
    // each broadcast from the other node reaches 2 members here; this node's own reach 2 more
    counts: () => ({ received: (deliveries - 2 * handed) / 2, lost: 0, unpublished: 0, deliveries }),
    close: async () => {
      pub.disconnect();
      sub.disconnect();
    },
  },
  names,
);
