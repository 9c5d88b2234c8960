import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { Channels } from "ws-channels";

const channels = new Channels<{ user: string }>();
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8080) });
wss.on("listening", () => console.log(`chat on ws://127.0.0.1:${(wss.address() as AddressInfo).port}/?user=ann`));

wss.on("connection", (ws, request) => {
  const user = new URLSearchParams(request.url?.split("?")[1]).get("user") ?? "anonymous";
  ws.on("message", (data) => {
    let message: { op?: unknown; room?: unknown; text?: unknown } | null = null;
    try {
      message = JSON.parse(String(data));
    } catch {
      // not JSON: refused just below, like any other bad message
    }
    const { op, room, text } = message ?? {};
    if (typeof room !== "string") return ws.close(1008, "expected {op, room, text?}");
    if (op === "join") channels.join(room, ws, { user });
    if (op === "leave") channels.leave(room, ws);
    if (op === "say" && channels.member(room, ws)) {
      // encoded once, one frame for every socket in the room
      void channels.broadcast(room, JSON.stringify({ room, user, text }));
    }
    if (op === "who") {
      const users = channels.reduce(room, [] as string[], (names, { meta }) => [...names, meta.user]);
      ws.send(JSON.stringify({ room, users }));
    }
  });
  // No ws.on("close") needed: a socket that closes leaves every channel by itself.
});

export { channels, wss };
