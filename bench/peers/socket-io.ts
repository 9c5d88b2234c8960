/* socket.io 4 rooms: clients send the event "m" with a text; the server emits it to the room. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { runPeer } from "./harness.js";

runPeer(async () => {
  const http = createServer();
  // WebSocket only (no long-polling), no compression: the same wire work as the other peers.
  const io = new Server(http, { transports: ["websocket"], perMessageDeflate: false, serveClient: false });
  io.on("connection", (socket) => {
    void socket.join("bench");
    socket.on("m", (text: string) => io.to("bench").emit("m", text));
  });
  await new Promise<void>((resolve, reject) => http.once("error", reject).listen(0, "127.0.0.1", resolve));
  return {
    port: (http.address() as AddressInfo).port,
    members: () => io.of("/").adapter.rooms.get("bench")?.size ?? 0,
  };
});
