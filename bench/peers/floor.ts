/*
 * The floor of Node's own write path, not a usable server: `ws` for the handshakes, then every
 * message framed once and the same bytes written with `socket.write`, one call per delivery, no
 * checks, no cork. Messages that arrive in one tick (a burst) are joined into one buffer and
 * written once to each socket, so a burst costs one write per member.
 */
import type { AddressInfo, Socket } from "node:net";
import * as wsModule from "ws";
import { type WebSocket, WebSocketServer } from "ws";
import { roleOf, roomMessage, runPeer } from "./harness.js";

const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[] };
};
const frame = (text: string): Buffer =>
  Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

runPeer(async () => {
  const rooms = new Map<string, Set<Socket>>();
  let members = 0;
  /** Frames per room that arrived in this tick, written at its end. */
  const pending = new Map<Set<Socket>, Buffer[]>();
  const flush = (): void => {
    for (const [room, frames] of pending) {
      const bytes = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
      for (const socket of room) socket.write(bytes);
    }
    pending.clear();
  };
  const publish = (room: Set<Socket>, text: string): void => {
    if (pending.size === 0) process.nextTick(flush);
    const frames = pending.get(room);
    if (frames === undefined) pending.set(room, [frame(text)]);
    else frames.push(frame(text));
  };
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  wss.on("connection", (ws, request) => {
    const role = roleOf(request.url);
    if (role.control) {
      ws.on("message", (data) => {
        const trigger = data.toString();
        for (const [name, room] of rooms) publish(room, roomMessage(trigger, name));
      });
      return;
    }
    const mine = rooms.get(role.room) ?? new Set();
    rooms.set(role.room, mine);
    const socket = socketOf(ws);
    mine.add(socket);
    members++;
    ws.on("close", () => {
      mine.delete(socket);
      members--;
    });
    ws.on("message", (data) => publish(mine, data.toString()));
  });
  await new Promise<void>((resolve, reject) => wss.once("listening", resolve).once("error", reject));
  return { port: (wss.address() as AddressInfo).port, members: () => members };
});
