import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { stat } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { TcpClient, WsClient, within } from "./helpers.js";
import { killAll, type Spawned, serverPorts, spawnProject } from "./processes.js";

const children: ChildProcess[] = [];
/** The server's bin, as built. */
const CLI = new URL("../packages/server/dist/cli.js", import.meta.url);
afterEach(() => killAll(children));

function start(command: string, args: string[]): Spawned {
  return spawnProject(children, command, args);
}

async function exercise(port: { ws: number; tcp: number }): Promise<{ ws: WsClient; tcp: TcpClient[] }> {
  const ws = await WsClient.open(`ws://127.0.0.1:${port.ws}/?id=me`);
  ws.send({ join: "room" });
  ws.send({ say: "hello", to: "room" });
  expect([await ws.next(), await ws.next()]).toEqual([{ joined: "room" }, { to: "room", say: "hello", from: "me" }]);
  const tcp = [await TcpClient.open(port.tcp), await TcpClient.open(port.tcp)];
  // The server may read tcp[0]'s bytes before it accepts tcp[1]: write until tcp[1] has a copy.
  for (let i = 0; i < 100 && !tcp[1]!.text.includes("\n"); i++) {
    tcp[0]!.socket.write("over tcp\n");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(tcp[1]!.text).toMatch(/^(over tcp\n)+$/);
  // tcp[0] gets tcp[1]'s line; an echo of its own lines would have reached it first
  tcp[1]!.socket.write("back\n");
  expect(await tcp[0]!.until("back\n")).toBe("back\n");
  return { ws, tcp };
}

describe("the ws-channels CLI", () => {
  it("serves WebSocket and TCP clients, and SIGTERM closes them with 1001 and exits 0", async () => {
    const started = start(process.execPath, ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0"]);
    const { child } = started;
    const { ws, tcp } = await exercise(await serverPorts(started));
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    child.kill("SIGTERM"); // a second signal during shutdown changes nothing
    expect(await ws.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await within(exited, "the server to exit")).toEqual([0, null]);
    await Promise.all(tcp.map((c) => c.close()));
  });

  it("npm start runs the build made once, compiling nothing; it serves under npm's signals and exits 0 on SIGINT", async () => {
    // the build npm ci made (prepare) or npm run build: a compile at start would remake dist/ (a new file, a new inode)
    const built = await stat(CLI);
    const started = start("npm", ["start", "--", "--port", "0", "--tcp-port", "0"]);
    const { child } = started;
    const { ws, tcp } = await exercise(await serverPorts(started, 60_000));
    const now = await stat(CLI);
    expect([now.ino, now.mtimeMs]).toEqual([built.ino, built.mtimeMs]);
    expect(started.output()).not.toMatch(/tsc|> \S+ (prestart|build)/);
    const exited = once(child, "exit");
    child.kill("SIGINT");
    expect(await ws.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await within(exited, "npm to exit")).toEqual([0, null]);
    await Promise.all(tcp.map((c) => c.close()));
  }, 90_000);

  it("--help prints every flag and exits 0; a bad flag exits 1 with a reason", async () => {
    const help = start(process.execPath, ["packages/server/dist/cli.js", "--help"]);
    expect((await within(once(help.child, "exit"), "--help to exit"))[0]).toBe(0);
    for (const flag of [
      "--host",
      "--port",
      "--tcp-port",
      "--max-frame-size",
      "--max-channel-length",
      "--high-water-mark",
      "--slow-consumer",
      "--max-channels-per-connection",
      "--max-connections-per-ip",
      "--max-messages-per-second",
      "--max-connections <n>",
      "--max-pending <n>",
      "--max-pending-bytes <bytes>",
      "--pending-timeout <ms>",
      "--hook-timeout <ms>",
      "--max-targets <n>",
      "--ping-interval <ms>",
      "--ping-timeout <ms>",
      "--jwt-secret-file <path>",
      "--jwt-public-key-file <path>",
      "--jwt-audience <aud>",
      "--jwt-issuer <iss>",
      "--jwt-max-age <seconds>",
      "--jwt-clock-tolerance <seconds>",
      "--jwt-require-channels",
      "--allowed-origins <list>",
      "--tls-cert <file>",
      "--tls-key <file>",
      "--admin-port <port>",
      "--admin-host <address>",
      "--log-level <level>",
      "--log-format <format>",
      "--redis <url>",
      "--redis-prefix <prefix>",
      "--history-size <n>",
      "--history-ttl <seconds>",
      "--recover-max <n>",
      "--worker-backlog-bytes <bytes>",
    ]) {
      expect(help.output()).toContain(flag);
    }
    const bad = start(process.execPath, ["packages/server/dist/cli.js", "--port", "65536"]);
    expect((await within(once(bad.child, "exit"), "the bad flag to exit"))[0]).toBe(1);
    expect(bad.output()).toMatch(/--port.*invalid/);
    const lone = start(process.execPath, ["packages/server/dist/cli.js", "--redis-prefix", "app"]);
    expect((await within(once(lone.child, "exit"), "--redis-prefix without --redis to exit"))[0]).toBe(1);
    expect(lone.output()).toContain("--redis-prefix goes with --redis");
  });

  it("--history-size keeps says: a say carries its offset and epoch, a join the position", async () => {
    const started = start(process.execPath, ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--history-size", "5"]);
    const { ws: port } = await serverPorts(started);
    const c = await WsClient.open(`ws://127.0.0.1:${port}/`);
    c.send({ join: "room" });
    const { epoch } = (await c.next()) as { epoch: string };
    expect(epoch).toEqual(expect.any(String));
    c.send({ say: "hi", to: "room" });
    expect(await c.next()).toEqual({ to: "room", say: "hi", offset: 1, epoch });
    await c.close();
  });

  it("--max-connections caps the node: past it a client is closed 1008 too many connections", async () => {
    const started = start(process.execPath, ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--max-connections", "1"]);
    const { ws: port } = await serverPorts(started);
    const first = await WsClient.open(`ws://127.0.0.1:${port}/`);
    const second = await WsClient.open(`ws://127.0.0.1:${port}/`);
    expect(await second.closedBy()).toEqual({ code: 1008, reason: "too many connections" });
    await first.close();
  });

  it("the package exports Channels and startServer to a user's import", async () => {
    const probe = start(process.execPath, [
      "--input-type=module",
      "-e",
      'const { Channels } = await import("ws-channels"); const { startServer } = await import("@ws-channels/server");' +
        "const s = await startServer({ port: 0, tcpPort: 0 }); console.log(typeof Channels, s.channels instanceof Channels); await s.close();",
    ]);
    expect((await within(once(probe.child, "exit"), "the import probe"))[0]).toBe(0);
    expect(probe.output()).toContain("function true");
  });

  it("a port already in use exits 1 with the reason", async () => {
    const first = start(process.execPath, ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0"]);
    const { ws } = await serverPorts(first);
    const second = start(process.execPath, ["packages/server/dist/cli.js", "--port", String(ws), "--tcp-port", "0"]);
    expect((await within(once(second.child, "exit"), "the second server to exit"))[0]).toBe(1);
    expect(second.output()).toMatch(/cannot start: .*EADDRINUSE/);
  });
});
