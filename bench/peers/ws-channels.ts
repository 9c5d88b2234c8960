/* ws-channels: every connection joins "bench"; each text message is broadcast to the room. */
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { Channels } from "ws-channels";
import { runPeer } from "./harness.js";

runPeer(async () => {
  const channels = new Channels();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  wss.on("connection", (ws) => {
    channels.join("bench", ws);
    ws.on("message", (data) => {
      // The promise only says how many got it; a failed member leaves by itself.
      void channels.broadcast("bench", data.toString());
    });
  });
  await new Promise<void>((resolve, reject) => wss.once("listening", resolve).once("error", reject));
  return { port: (wss.address() as AddressInfo).port, members: () => channels.count("bench") };
});
