/* The systems and scenarios of bench:e2e, and how many clients and messages each run gets. */
import type { System } from "./run.js";

export const SYSTEMS: System[] = [
  { name: "ws-channels", peer: "ws-channels.js", socketIo: false },
  { name: "naive ws", peer: "naive-ws.js", socketIo: false },
  { name: "socket.io", peer: "socket-io.js", socketIo: true },
  { name: "uWebSockets.js", peer: "uws.js", socketIo: false },
  // Not a server: Node's own write path, one socket.write of a prebuilt frame per delivery.
  { name: "floor", peer: "floor.js", socketIo: false },
  // The same server on two nodes, clients split over them; CPU counts every process, redis-server too.
  { name: "ws-channels 2 workers", peer: "ws-channels-cluster.js", socketIo: false },
  { name: "ws-channels 2 Redis nodes", peer: "ws-channels-redis.js", socketIo: false },
];
export const OURS = "ws-channels";

/** One way of loading a server. */
export interface Scenario {
  name: string;
  about: string;
  /** Messages the publisher sends together, in one turn and one write. */
  burst: number;
  /** Many rooms of this size, the server publishing to each in turn; else one room. */
  roomSize: number | undefined;
  /** Fixed rate (latency at a load every system sustains) instead of a window. */
  fixedRate: boolean;
  /** Messages in flight, if not the --window W of the one-room scenarios. */
  window: number | undefined;
  /** The systems that run it (socket.io only in the one-room throughput scenarios). */
  systems: string[];
}

const TWO_NODES = ["ws-channels 2 workers", "ws-channels 2 Redis nodes"];
/** The one-room throughput scenarios run every system, the two-node rows too. */
const ALL = SYSTEMS.map((system) => system.name);
/** The rest: one process per system, no socket.io. */
const NOT_SOCKET_IO = ALL.filter((name) => name !== "socket.io" && !TWO_NODES.includes(name));

/** Every scenario, with the window W written into its description. */
export function scenarios(window: number): Scenario[] {
  const rooms = (size: number): Scenario => ({
    name: `rooms-${size}`,
    about:
      `the C clients are in rooms of ${size} (client i in room i / ${size}); on each trigger from an extra control client the server ` +
      "publishes one message to every room in turn, and the next trigger goes out once every client has the round; every client checks " +
      "it gets exactly its room's messages, in order. One message per member per turn: nothing can be batched",
    burst: 1,
    roomSize: size,
    fixedRate: false,
    window: 1,
    systems: NOT_SOCKET_IO,
  });
  return [
    {
      name: "steady",
      about: `client 0 publishes one message at a time with a window of ${window} (message i goes out once every client has message i-${window})`,
      burst: 1,
      roomSize: undefined,
      fixedRate: false,
      window: undefined,
      systems: ALL,
    },
    {
      name: "bursty",
      about: "client 0 publishes 8 messages in one turn and one write, and the next 8 once every client has those",
      burst: 8,
      roomSize: undefined,
      fixedRate: false,
      window: undefined,
      systems: ALL,
    },
    rooms(4),
    rooms(10),
    {
      name: "latency",
      about:
        "client 0 publishes at a fixed rate that every system sustains (half of the naive ws server's steady deliveries/s at that C " +
        "in this run, else --rate), whatever has arrived; latency from publish to receipt",
      burst: 1,
      roomSize: undefined,
      fixedRate: true,
      window: undefined,
      systems: NOT_SOCKET_IO,
    },
  ];
}
