// The same chat on many machines: every server process talks to one Redis, and RedisBroker
// subscribes each process to the rooms it has members in. Start several with different PORTs.
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { Channels } from "ws-channels";
import { RedisBroker } from "ws-channels/redis";

const broker = new RedisBroker({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
broker.on("down", (reason) => console.error("redis down, rooms stay local meanwhile:", reason?.message));
broker.on("up", (rooms) => console.error(`redis up, ${rooms} rooms subscribed`));
const channels = new Channels({ broker });
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8080) });
wss.on("listening", () => console.log(`chat on ws://127.0.0.1:${(wss.address() as AddressInfo).port}, rooms shared through Redis`));

wss.on("connection", (ws) => {
  ws.on("message", async (data) => {
    let message: { op?: unknown; room?: unknown; text?: unknown } = {};
    try {
      message = JSON.parse(String(data)) ?? {};
    } catch {
      // not JSON: refused below
    }
    const { op, room, text } = message;
    if (typeof room !== "string") return ws.close(1008, "expected {op, room, text?}");
    if (op === "join") {
      await channels.tryJoin(room, ws); // resolves once Redis acknowledged this process's SUBSCRIBE
      ws.send(JSON.stringify({ joined: room }));
    }
    if (op === "say" && channels.member(room, ws)) void channels.broadcast(room, JSON.stringify({ room, text }));
  });
});

export { channels, wss };
