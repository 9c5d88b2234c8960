/* ws-channels on 2 nodes sharing a real redis-server (started here, on a unix socket), through RedisBroker. */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisBroker } from "ws-channels/redis";
import { Skip } from "./harness.js";
import { runTwoNodes } from "./two-nodes.js";

runTwoNodes({
  primary: async () => {
    const dir = mkdtempSync(join(tmpdir(), "ws-channels-e2e-"));
    const socket = join(dir, "redis.sock");
    const redis = spawn("redis-server", ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", dir]);
    process.on("exit", () => {
      redis.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    });
    await new Promise<void>((resolve, reject) => {
      let output = "";
      redis.on("error", () => reject(new Skip("redis-server is not installed")));
      redis.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (/ready to accept connections/i.test(output)) resolve();
      });
    });
    return { extraPids: [redis.pid as number], env: { REDIS_SOCKET: socket } };
  },
  broker: () => new RedisBroker({ url: process.env.REDIS_SOCKET ?? "" }),
});
