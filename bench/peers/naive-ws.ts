/* The naive ws server a user might write first: a Set of sockets per room and ws.send to each. */
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { roleOf, roomMessage, runPeer } from "./harness.js";

runPeer(async () => {
  const rooms = new Map<string, Set<WebSocket>>();
  let members = 0;
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  wss.on("connection", (ws, request) => {
    const role = roleOf(request.url);
    if (role.control) {
      ws.on("message", (data) => {
        const trigger = data.toString();
        for (const [name, room] of rooms) {
          const text = roomMessage(trigger, name);
          for (const member of room) member.send(text);
        }
      });
      return;
    }
    const mine = rooms.get(role.room) ?? new Set();
    rooms.set(role.room, mine);
    mine.add(ws);
    members++;
    ws.on("close", () => {
      mine.delete(ws);
      members--;
    });
    ws.on("message", (data) => {
      const text = data.toString();
      for (const member of mine) member.send(text);
    });
  });
  await new Promise<void>((resolve, reject) => wss.once("listening", resolve).once("error", reject));
  return { port: (wss.address() as AddressInfo).port, members: () => members };
});
