/* The naive ws server a user might write first: a Set of sockets and ws.send to each. */
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { runPeer } from "./harness.js";

runPeer(async () => {
  const room = new Set<WebSocket>();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  wss.on("connection", (ws) => {
    room.add(ws);
    ws.on("close", () => room.delete(ws));
    ws.on("message", (data) => {
      const text = data.toString();
      for (const member of room) member.send(text);
    });
  });
  await new Promise<void>((resolve, reject) => wss.once("listening", resolve).once("error", reject));
  return { port: (wss.address() as AddressInfo).port, members: () => room.size };
});
