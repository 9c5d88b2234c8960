/* ws-channels: every connection joins its room; a message is broadcast to the room. */
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { Channels } from "ws-channels";
import { roleOf, roomMessage, runPeer } from "./harness.js";

runPeer(async () => {
  const channels = new Channels();
  const rooms = new Set<string>();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  wss.on("connection", (ws, request) => {
    const role = roleOf(request.url);
    if (role.control) {
      ws.on("message", (data) => {
        const trigger = data.toString();
        for (const room of rooms) void channels.broadcast(room, roomMessage(trigger, room));
      });
      return;
    }
    const room = role.room;
    rooms.add(room);
    channels.join(room, ws);
    ws.on("message", (data) => {
      // The promise only says how many got it; a failed member leaves by itself.
      void channels.broadcast(room, data.toString());
    });
  });
  await new Promise<void>((resolve, reject) => wss.once("listening", resolve).once("error", reject));
  return { port: (wss.address() as AddressInfo).port, members: () => channels.stats().members };
});
