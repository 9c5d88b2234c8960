/*
 * The processes of `npm run bench:platform`: the CLI server (one process, or a primary and its
 * workers) and redis-server, each started fresh, measured from /proc, and always killed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { redisSocket, startRedis as startServerOfRedis } from "../redis.js";
import { until } from "./until.js";

const CLI = fileURLToPath(new URL("../../../packages/server/dist/cli.js", import.meta.url));
const live = new Set<ChildProcess>();
const dirs: string[] = [];
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** CPU time the processes `pids` have used so far, every thread counted, in ns (/proc/PID/task/TID/schedstat). */
export function cpuNs(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    for (const task of readdirSync(`/proc/${pid}/task`, { withFileTypes: false })) {
      const stat = readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8");
      total += Number(stat.split(" ")[0]);
    }
  }
  return total;
}

/** A started process and how to stop it. */
export interface Started {
  /** Every process that serves (a primary and its workers, or the one process). */
  pids: number[];
  stop(): void;
}

/** A running CLI server: its WebSocket port and processes. */
export interface Server extends Started {
  port: number;
}

/**
 * Starts `ws-channels` (packages/server/dist/cli.js) with `args` plus a free WebSocket and TCP
 * port, no page, and limits that let a benchmark's clients in; waits until each of its `workers`
 * listens.
 */
export async function startServer(args: string[], workers = 1): Promise<Server> {
  const child = spawn(
    process.execPath,
    [CLI, "--port", "0", "--tcp-port", "0", "--no-page", "--max-connections-per-ip", "100000", ...args, "--workers", String(workers)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  live.add(child);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const listening = new RegExp(`(WebSocket listening on ws://127\\.0\\.0\\.1:(\\d+)[\\s\\S]*){${workers}}`);
  await until(
    () => listening.test(output),
    "the server's listening lines",
    20_000,
    () => output,
  );
  const port = Number(/WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  const pids = [...new Set([...output.matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1])))];
  if (!pids.includes(child.pid as number)) pids.push(child.pid as number);
  return {
    port,
    pids,
    stop() {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      live.delete(child);
    },
  };
}

/** A running redis-server on a unix socket in a temporary folder, no persistence. */
export interface RedisProcess extends Started {
  path: string;
}

/** Starts redis-server (Debian's, bench/redis.ts) in a temporary folder and waits until it accepts connections. */
export async function startRedis(): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), "ws-channels-bench-"));
  dirs.push(dir);
  const child = await startServerOfRedis(dir, (started) => live.add(started));
  return {
    path: redisSocket(dir),
    pids: [child.pid as number],
    stop() {
      child.kill("SIGKILL");
      live.delete(child);
    },
  };
}
