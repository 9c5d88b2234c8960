// One chat server on every core: node:cluster workers share the port, and ClusterBroker carries
// each broadcast through the primary to the workers that have members in the room.
import cluster from "node:cluster";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { WebSocketServer } from "ws";
import { Channels } from "ws-channels";
import { ClusterBroker, setupPrimary } from "ws-channels/cluster";

if (cluster.isPrimary) {
  setupPrimary(); // before fork(): broadcasts cross IPC as bytes
  for (let i = 0; i < Number(process.env.WORKERS ?? availableParallelism()); i++) cluster.fork();
} else {
  const channels = new Channels({ broker: new ClusterBroker() });
  const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8080) });
  wss.on("listening", () => console.log(`worker ${process.pid}: chat on ws://127.0.0.1:${(wss.address() as AddressInfo).port}`));
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
        await channels.tryJoin(room, ws); // resolves once the primary routes the room here
        ws.send(JSON.stringify({ joined: room }));
      }
      // reaches the room's members in every worker
      if (op === "say" && channels.member(room, ws)) void channels.broadcast(room, JSON.stringify({ room, text, pid: process.pid }));
    });
  });
}
