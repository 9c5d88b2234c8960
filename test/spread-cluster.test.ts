import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, TcpClient, WsClient } from "./helpers.js";
import { connectToWorker, killAll, type Spawned, serverPorts, spawnProject, startedWorkers, waitFor } from "./processes.js";
import { join, openWhenFree, settled, spreadsOverNodes, type TwoNodes } from "./spread.js";

const children: ChildProcess[] = [];
let server: Spawned;
let ports: { ws: number; tcp: number };

/** The live workers, in the order they started: node 0 and node 1. */
const liveWorkers = (): number[] => startedWorkers(server);

/** Connects until the kernel shows the connection held by worker `node` (the primary deals them round robin). */
function onWorker<C>(
  node: 0 | 1,
  port: number,
  open: () => Promise<C>,
  socket: (c: C) => Socket,
  close: (c: C) => Promise<void>,
): Promise<C> {
  return connectToWorker(server, node, port, open, socket, close);
}

const nodes: TwoNodes = {
  ws: (node, path = "/") =>
    onWorker(
      node,
      ports.ws,
      () => WsClient.open(`ws://127.0.0.1:${ports.ws}${path}`),
      (c) => (c.ws as unknown as { _socket: Socket })._socket,
      (c) => c.close(),
    ),
  race: (_node, path) => WsClient.open(`ws://127.0.0.1:${ports.ws}${path}`), // the primary deals them round robin
  tcp: (node) =>
    onWorker(
      node,
      ports.tcp,
      () => TcpClient.open(ports.tcp),
      (c) => c.socket,
      (c) => c.close(),
    ),
};

beforeAll(async () => {
  server = spawnProject(children, process.execPath, ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--workers", "2"]);
  ports = await serverPorts(server, 10_000);
  await eventually(() => liveWorkers().length === 2, "both workers", 10_000);
}, 20_000);

afterAll(() => killAll(children));

spreadsOverNodes("--workers 2", () => nodes);

describe("--workers 2: a worker that dies", () => {
  it("is replaced; its clients' ids are free at once and its memberships gone, the other worker keeps serving", async () => {
    const [victim] = liveWorkers() as [number, number];
    const doomed = await settled(await nodes.ws(0, "/?id=dora"));
    await join(doomed, "room");
    const other = await settled(await nodes.ws(1, "/?id=otto"));
    await join(other, "room");
    process.kill(victim, "SIGKILL");
    await waitFor(server, new RegExp(`pid ${victim}\\) died with signal SIGKILL, replacing it`), "the death line");
    expect((await doomed.closedBy()).code).toBe(1006);
    await eventually(() => liveWorkers().length === 2 && !liveWorkers().includes(victim), "a replacement worker", 10_000);
    // the primary forgot dora at once: her id is free on the surviving worker
    const back = await openWhenFree(nodes, 1, "/?id=dora", 1000);
    // and the room has exactly the members still connected
    other.send({ say: "after", to: "room" });
    expect(await other.next()).toEqual({ to: "room", say: "after", from: "otto" });
    back.send({ targets: ["otto", "dora"], payload: "still here" });
    expect(await other.next()).toEqual({ from: "dora", payload: "still here" });
    expect(await back.next()).toEqual({ from: "dora", payload: "still here" });
    await Promise.all([back.close(), other.close()]);
  }, 30_000);
});
