import { describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { serverPerTest, WsClient } from "./helpers.js";
import { type HistoryCaseSettings, historyConformance, join } from "./history-conformance.js";

/** One process: both "nodes" are the same server; a new epoch is the process alone restarting. */
let server: RunningServer | undefined;
let settings: HistoryCaseSettings | undefined;
const begin = async (): Promise<void> => {
  server = await startServer({ port: 0, tcpPort: false, maxMessagesPerSecond: 100_000, ...settings });
};
historyConformance("one process", {
  async start(given) {
    settings = given;
    await begin();
  },
  client: (_node, id) => WsClient.open(`ws://127.0.0.1:${server?.ws.port}/${id === undefined ? "" : `?id=${id}`}`),
  async newEpoch() {
    await server?.close();
    await begin();
  },
  dropped: async () => server?.channels.stats().dropped ?? 0,
  async stop() {
    await server?.close();
    server = undefined;
  },
});

const fixture = serverPerTest({ port: 0, tcpPort: false, maxMessagesPerSecond: 100_000, historySize: 100 });

async function client(): Promise<WsClient> {
  return fixture.closeAfter(await WsClient.open(`ws://127.0.0.1:${fixture.server.ws.port}/`));
}

describe("history on one process", () => {
  it("off by default: says carry no offset and a recover is a plain join", async () => {
    await fixture.start({ historySize: 0 });
    const a = await client();
    expect(await join(a, "room", { offset: 3, epoch: "e" })).toEqual({ joined: "room" });
    a.send({ say: 1, to: "room" });
    expect(await a.next()).toEqual({ to: "room", say: 1 });
  });

  it("a bad history setting throws, and a bad recover closes 3000", async () => {
    await expect(fixture.start({ historySize: -1 })).rejects.toThrow(RangeError);
    await fixture.start();
    const a = await client();
    a.send({ join: "room", recover: { offset: -1, epoch: "e" } });
    expect((await a.closedBy()).code).toBe(3000);
  });
});
