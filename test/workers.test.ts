import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { REFUSAL_REASONS } from "../packages/server/src/refusals.js";
import { eventually, WsClient, within } from "./helpers.js";
import { alive, exited, killAll, type Spawned, serverPorts, socketOwners, spawnProject, waitFor } from "./processes.js";

const children: ChildProcess[] = [];
afterEach(() => killAll(children));
const start = (command: string, args: string[]): Spawned => spawnProject(children, command, args);

const WORKER = /worker (\d+) \(pid (\d+)\) started/g;

/** The workers the primary has announced so far: worker id -> pid. */
function workers(started: Spawned): Map<number, number> {
  return new Map([...started.output().matchAll(WORKER)].map((m) => [Number(m[1]), Number(m[2])]));
}

async function cluster(n: number): Promise<{ started: Spawned; ports: { ws: number; tcp: number }; pids: number[] }> {
  const started = start(process.execPath, ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--workers", String(n)]);
  const ports = await serverPorts(started, 10_000);
  await eventually(() => workers(started).size === n, `${n} workers to start`, 10_000);
  return { started, ports, pids: [...workers(started).values()] };
}

/** A cluster of 2 workers whose primary serves the admin listener. @returns it, its ports and the admin port. */
async function adminCluster(): Promise<{ started: Spawned; ports: { ws: number; tcp: number }; admin: number }> {
  const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--workers", "2", "--admin-port", "0"];
  const started = start(process.execPath, args);
  const ports = await serverPorts(started, 10_000);
  const [, admin] = await waitFor(
    started,
    /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/,
    "the admin line",
  );
  await eventually(() => workers(started).size === 2, "both workers", 10_000);
  return { started, ports, admin: Number(admin) };
}

/** One scrape of the primary's /metrics: each sample line's value, by its series as printed (name and labels). */
async function scrape(admin: number): Promise<{ body: string; value: (series: string) => number | undefined }> {
  const body = await (await within(fetch(`http://127.0.0.1:${admin}/metrics`), "a scrape")).text();
  const values = new Map(
    body
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1))]),
  );
  return { body, value: (series) => values.get(series) };
}

const localPort = (client: WsClient): number => (client.ws as unknown as { _socket: Socket })._socket.localPort as number;

describe("--workers", () => {
  it("runs n workers that share the ports; the kernel shows accepted sockets in both workers and none in the primary", async () => {
    const { started, ports, pids } = await cluster(2);
    expect(pids).toHaveLength(2);
    const clients = await Promise.all(Array.from({ length: 12 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    const primary = started.child.pid as number;
    const owners = await socketOwners(ports.ws, clients.map(localPort), [primary, ...pids]);
    expect(owners.size).toBe(clients.length);
    const perProcess = new Map<number, number>();
    for (const pid of owners.values()) perProcess.set(pid, (perProcess.get(pid) ?? 0) + 1);
    expect(perProcess.get(primary)).toBeUndefined();
    for (const pid of pids) expect(perProcess.get(pid) ?? 0).toBeGreaterThan(0);
    // every worker is a whole server for its own clients
    for (const [i, client] of clients.entries()) {
      client.send({ join: `own${i}` });
      expect(await client.next()).toEqual({ joined: `own${i}` });
    }
    await Promise.all(clients.map((c) => c.close()));
  });

  it("replaces a worker killed with SIGKILL; its clients are cut, the other worker's keep being served", async () => {
    const { started, ports, pids } = await cluster(2);
    const clients = await Promise.all(Array.from({ length: 8 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    const clientPorts = clients.map(localPort);
    const owners = await socketOwners(ports.ws, clientPorts, pids);
    expect(owners.size).toBe(clients.length);
    const victim = pids[0] as number;
    process.kill(victim, "SIGKILL");
    await waitFor(started, new RegExp(`pid ${victim}\\) died with signal SIGKILL, replacing it`), "the death line");
    // the primary's log is JSON lines here (stdout is a pipe): a death is a warn line (pino's 40), a start an info one (30)
    const lines = started
      .output()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(lines.find((line) => line.msg.includes(`pid ${victim}) died with signal SIGKILL`))?.level).toBe(40);
    expect(lines.find((line) => line.msg.includes(`pid ${victim}) started`))?.level).toBe(30);
    await eventually(() => workers(started).size === 3, "a third worker to start", 10_000);
    expect(alive(victim)).toBe(false);
    for (const [i, client] of clients.entries()) {
      if (owners.get(clientPorts[i] as number) === victim) {
        expect((await client.closedBy()).code).toBe(1006); // gone without a close frame
      } else {
        client.send({ join: "after" });
        expect(await client.next()).toEqual({ joined: "after" });
      }
    }
    // the replacement serves new clients
    const late = await WsClient.open(`ws://127.0.0.1:${ports.ws}/?id=late`);
    late.send({ join: "x" });
    expect(await late.next()).toEqual({ joined: "x" });
    await Promise.all(clients.map((c) => c.close()));
    await late.close();
  }, 30_000);

  it("more than 5 worker deaths within 10 s stop the server with exit status 1 and a line saying why", async () => {
    const { started } = await cluster(2);
    const anyAlive = (): number | undefined => [...workers(started).values()].find(alive);
    for (let death = 1; death <= 6; death++) {
      await eventually(() => anyAlive() !== undefined, "a live worker", 10_000);
      const pid = anyAlive() as number;
      process.kill(pid, "SIGKILL");
      if (death < 6) await waitFor(started, new RegExp(`pid ${pid}\\) died with signal SIGKILL, replacing it`), `death ${death}`);
    }
    expect(await exited(started.child)).toEqual([1, null]);
    expect(started.output()).toMatch(/6 deaths within 10 s, stopping/);
    for (const pid of workers(started).values()) expect(alive(pid)).toBe(false);
  }, 30_000);

  it("SIGTERM to the primary: every worker closes its clients with 1001, no worker is replaced, the primary exits 0", async () => {
    const { started, ports, pids } = await cluster(2);
    const clients = await Promise.all(Array.from({ length: 6 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    started.child.kill("SIGTERM");
    started.child.kill("SIGTERM"); // a second signal changes nothing
    for (const client of clients) expect(await client.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await exited(started.child)).toEqual([0, null]);
    expect(workers(started).size).toBe(2);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  }, 20_000);

  it("npm start -- --workers 2, stopped with SIGTERM: exit 0 and no process left behind", async () => {
    const started = start("npm", ["start", "--", "--port", "0", "--tcp-port", "0", "--workers", "2"]);
    const ports = await serverPorts(started, 60_000);
    await eventually(() => workers(started).size === 2, "both workers");
    const client = await WsClient.open(`ws://127.0.0.1:${ports.ws}/`);
    started.child.kill("SIGTERM");
    expect(await client.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await exited(started.child)).toEqual([0, null]);
    for (const pid of workers(started).values()) expect(alive(pid)).toBe(false);
  }, 90_000);

  it("a port in use stops the cluster with exit status 1 and the reason", async () => {
    const first = await cluster(2);
    const second = start(process.execPath, [
      "packages/server/dist/cli.js",
      "--port",
      String(first.ports.ws),
      "--tcp-port",
      "0",
      "--workers",
      "2",
    ]);
    expect((await exited(second.child))[0]).toBe(1);
    expect(second.output()).toMatch(/cannot start: .*EADDRINUSE/);
  }, 20_000);

  it("--admin-port on the primary: one scrape sums every worker's metrics; /readyz once every worker listens", async () => {
    const { started, ports, admin } = await adminCluster();
    const clients = await Promise.all(Array.from({ length: 6 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    const owners = await socketOwners(ports.ws, clients.map(localPort), [...workers(started).values()]);
    expect(new Set(owners.values()).size).toBe(2); // the six are spread over both workers
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(metrics).toMatch(/^ws_channels_connections\{transport="ws"\} 6$/m);
    const ready = await fetch(`http://127.0.0.1:${admin}/readyz`);
    expect(ready.status).toBe(200);
    await Promise.all(clients.map((c) => c.close()));
  });

  it("/metrics merges the workers' series: broker_up is the least, channels one series per worker, counters summed", async () => {
    const { started, ports, admin } = await adminCluster();
    const ids = [...workers(started)]; // [worker id, pid]
    const clients = await Promise.all(Array.from({ length: 8 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    const owners = await socketOwners(
      ports.ws,
      clients.map(localPort),
      ids.map(([, pid]) => pid),
    );
    // one client on each worker, read from the kernel
    const [[first], [second]] = ids as [[number, number], [number, number]];
    const on = (id: number): WsClient => {
      const pid = workers(started).get(id);
      const client = clients.find((c) => owners.get(localPort(c)) === pid);
      if (client === undefined) throw new Error(`no client on worker ${id}`);
      return client;
    };
    const [a, b] = [on(first), on(second)];
    a.send({ join: "room" });
    expect(await a.next()).toEqual({ joined: "room" });
    // one user in one room: one channel, on the first worker; both brokers up is 1, not 2
    let metrics = await scrape(admin);
    expect(metrics.value("ws_channels_broker_up")).toBe(1);
    expect(metrics.value(`ws_channels_channels{worker="${first}"}`)).toBe(1);
    expect(metrics.value(`ws_channels_channels{worker="${second}"}`)).toBe(0);
    expect(metrics.value("ws_channels_channels")).toBeUndefined();
    expect(metrics.value("ws_channels_memberships")).toBe(1);
    expect(metrics.value('ws_channels_connections{transport="ws"}')).toBe(clients.length);
    // each worker broadcasts once and writes both says to its one member
    b.send({ join: "room" });
    expect(await b.next()).toEqual({ joined: "room" });
    a.send({ say: "from a", to: "room" });
    b.send({ say: "from b", to: "room" });
    for (const client of [a, b]) {
      const says = [await client.next(), await client.next()].map((m) => (m as { say: string }).say);
      expect(says.sort()).toEqual(["from a", "from b"]);
    }
    const deadline = Date.now() + 5000;
    do metrics = await scrape(admin);
    while (metrics.value("ws_channels_deliveries_total") !== 4 && Date.now() < deadline);
    expect(metrics.value("ws_channels_deliveries_total")).toBe(4);
    expect(metrics.value("ws_channels_broadcasts_total")).toBe(2);
    expect(metrics.value(`ws_channels_channels{worker="${second}"}`)).toBe(1);
    await Promise.all(clients.map((c) => c.close()));
  }, 30_000);

  it("docs/deploying.md's metrics table lists every ws_channels series /metrics serves, with its type and labels", async () => {
    const { admin } = await adminCluster(); // with workers, so the broker series exist
    const { body } = await scrape(admin);
    const served = new Map<string, { type: string; labels: Set<string> }>();
    for (const [, name, type] of body.matchAll(/^# TYPE (ws_channels_\w+) (\w+)$/gm))
      served.set(name as string, { type: type as string, labels: new Set() });
    // a histogram's series are NAME_bucket (with `le`), NAME_sum and NAME_count
    for (const [, name, labels] of body.matchAll(/^(ws_channels_\w+?)(?:_bucket|_sum|_count)?\{([^}]*)\} /gm))
      for (const [, label] of (labels as string).matchAll(/(\w+)="/g))
        if (label !== "le") served.get(name as string)?.labels.add(label as string);
    const page = await readFile(new URL("../docs/deploying.md", import.meta.url), "utf8");
    const documented = new Map<string, { type: string; labels: Set<string> }>();
    for (const [, name, type, labels] of page.matchAll(/^\| `(ws_channels_\w+)` +\| (\w+) +\| ([^|]*)\|/gm))
      documented.set(name as string, {
        type: type as string,
        labels: new Set([...(labels as string).matchAll(/`(\w+)`/g)].map((m) => m[1] as string)),
      });
    expect(served.size).toBeGreaterThan(10);
    expect(documented).toEqual(served);
    // and the reasons listed under it are every refusal reason there is
    const reasons = /`refused_total` reasons: ([^.]*)\./.exec(page)?.[1] ?? "";
    expect([...reasons.matchAll(/`(\w+)`/g)].map((m) => m[1])).toEqual([...REFUSAL_REASONS]);
  });
});
