// A Node client of the server (ws-channels/client): two users in a room, one drops its connection
// and recovers what was said meanwhile. Against a running server: SERVER=ws://127.0.0.1:4545/
// (start it with --history-size 100 for recovery); without SERVER, one starts in this process.
import { startServer } from "@ws-channels/server";
import WebSocket from "ws";
import { Client, type Room } from "ws-channels/client";

const server = process.env.SERVER === undefined ? await startServer({ port: 0, tcpPort: false, historySize: 100 }) : undefined;
const url = process.env.SERVER ?? `ws://127.0.0.1:${server?.ws.port}/`;

// Node 20 has no global WebSocket: pass ws's (Node >= 22 and browsers need not)
const ann = new Client(url, { WebSocket, id: "ann" });
const bob = new Client(url, { WebSocket, id: "bob" });
ann.on("state", ({ state, attempt, delay }) =>
  console.log(`ann: ${state}${delay === undefined ? "" : ` (attempt ${attempt}, in ${delay} ms)`}`),
);

const joined = (room: Room) => new Promise<{ recovered: boolean; missed: readonly unknown[] }>((resolve) => room.once("joined", resolve));
const annRoom = ann.join("lobby");
const bobRoom = bob.join("lobby");
annRoom.on("message", ({ say, from, offset }) => console.log(`ann hears ${from}: ${JSON.stringify(say)} (offset ${offset})`));
annRoom.on("closed", ({ reason }) => console.log(`ann's room closed: ${reason}`));
await Promise.all([joined(annRoom), joined(bobRoom)]);

const heard = new Promise((resolve) => annRoom.once("message", resolve));
await bobRoom.say("hello"); // resolves once written: ann hears it a moment later
await heard;
const back = joined(annRoom);
ann.drop(); // as a network would: no leave
await bobRoom.say("said while ann was away");
const { recovered, missed } = await back;
console.log(`ann is back: recovered ${recovered}, ${missed.length} missed`);
const live = new Promise((resolve) => annRoom.on("message", ({ say }) => say === "and now live" && resolve(say)));
await bobRoom.say("and now live");
await live;

ann.close();
bob.close();
await server?.close();
