import { afterAll, beforeAll } from "vitest";
import { type RunningServer, startServer } from "../../packages/server/src/server.js";
import { WsClient } from "../helpers.js";
import { presenceConformance } from "./conformance.js";

// One process: both of the suite's nodes are the same server.
let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ port: 0, tcpPort: false, maxMessagesPerSecond: 10_000, maxConnectionsPerIp: 5000, presenceMax: 5000 });
});
afterAll(() => server.close());

presenceConformance("one process", () => ({
  open: (_node, query = "") => WsClient.open(`ws://127.0.0.1:${server.ws.port}/${query}`),
  raceRuns: 15,
}));
