import type { ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, WsClient } from "./helpers.js";
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
    const started = start(process.execPath, [
      "packages/server/dist/cli.js",
      "--port",
      "0",
      "--tcp-port",
      "0",
      "--workers",
      "2",
      "--admin-port",
      "0",
    ]);
    const ports = await serverPorts(started, 10_000);
    const [, admin] = await waitFor(
      started,
      /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/,
      "the admin line",
    );
    await eventually(() => workers(started).size === 2, "both workers", 10_000);
    const clients = await Promise.all(Array.from({ length: 6 }, () => WsClient.open(`ws://127.0.0.1:${ports.ws}/`)));
    const owners = await socketOwners(ports.ws, clients.map(localPort), [...workers(started).values()]);
    expect(new Set(owners.values()).size).toBe(2); // the six are spread over both workers
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(metrics).toMatch(/^ws_channels_connections\{transport="ws"\} 6$/m);
    const ready = await fetch(`http://127.0.0.1:${admin}/readyz`);
    expect(ready.status).toBe(200);
    await Promise.all(clients.map((c) => c.close()));
  });
});
