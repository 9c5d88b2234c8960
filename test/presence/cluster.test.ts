import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, WsClient } from "../helpers.js";
import { connectToWorker, killAll, type Spawned, serverPorts, spawnProject, startedWorkers, waitFor } from "../processes.js";
import { type Frame, listen, PresenceView, presenceConformance, readBack } from "./conformance.js";

// The CLI with --workers 2: the primary holds every worker's presence.
const children: ChildProcess[] = [];
let server: Spawned;
let port: number;

beforeAll(async () => {
  const flags = "--port 0 --tcp-port 0 --workers 2 --max-messages-per-second 10000 --max-connections-per-ip 5000 --presence-max 5000";
  server = spawnProject(children, process.execPath, ["packages/server/dist/cli.js", ...flags.split(" ")]);
  ({ ws: port } = await serverPorts(server, 10_000));
  await eventually(() => startedWorkers(server).length === 2, "both workers", 10_000);
}, 20_000);
afterAll(() => killAll(children));

/** A client on worker `node` (the kernel shows which worker holds it), or on either. */
function open(node: 0 | 1 | undefined, query = ""): Promise<WsClient> {
  const url = `ws://127.0.0.1:${port}/${query}`;
  if (node === undefined) return WsClient.open(url);
  const socket = (c: WsClient): Socket => (c.ws as unknown as { _socket: Socket })._socket;
  return connectToWorker(
    server,
    node,
    port,
    () => WsClient.open(url),
    socket,
    (c) => c.close(),
  );
}

presenceConformance("--workers 2", () => ({ open, raceRuns: 8 }));

describe("--workers 2: a worker's death", () => {
  it("a SIGKILLed worker's entries leave at once, one diff per channel", async () => {
    const [victim] = startedWorkers(server) as [number, number];
    const doomed = [await open(0, "?id=dora"), await open(0, "?id=dan")];
    for (const d of doomed)
      for (const channel of ["r1", "r2"]) {
        d.send({ join: channel });
        await d.next();
      }
    const a = await open(1, "?id=ann");
    const one = new PresenceView(a);
    const two = new PresenceView(a);
    one.apply(await listen(a, "r1"));
    two.apply(await listen(a, "r2"));
    expect(one.present.size).toBe(3);
    expect(two.present.size).toBe(3);
    process.kill(victim, "SIGKILL");
    await waitFor(server, new RegExp(`pid ${victim}\\) died with signal SIGKILL`), "the death line");
    const frames = [(await a.next()) as Frame, (await a.next()) as Frame].sort((x, y) =>
      String(x.presence).localeCompare(String(y.presence)),
    );
    expect(frames.map((f) => f.presence)).toEqual(["r1", "r2"]);
    one.apply(frames[0] as Frame);
    two.apply(frames[1] as Frame);
    expect(one.present.size).toBe(1);
    expect(two.present.size).toBe(1);
    // nothing more about the dead worker: the next frame a read answers
    expect(await readBack(a, "r1")).toEqual([...one.present.keys()]);
    await Promise.all([...doomed, a].map((c) => c.close()));
  }, 30_000);
});
