import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import type { Socket } from "node:net";
import { eventually, within } from "./helpers.js";

/** A child process and everything it has written so far, stdout and stderr together. */
export interface Spawned {
  child: ChildProcess;
  output: () => string;
}

/**
 * Starts `command` in the project folder, with `env` added to this process's environment, and
 * adds it to `children` (for the test file to kill afterwards). `group`: as the leader of a
 * process group of its own, so that `stopGroups` ends it with everything it started (npm, its
 * shell, node, cluster workers).
 */
export function spawnProject(
  children: ChildProcess[],
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  group = false,
): Spawned {
  const child = spawn(command, args, {
    cwd: new URL("..", import.meta.url),
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
    detached: group,
  });
  children.push(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

/** Kills what `spawnProject` started into `children` that is still running (for afterEach). */
export function killAll(children: ChildProcess[]): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

/** Waits until the output matches `pattern`; @returns the match. */
export async function waitFor(started: Spawned, pattern: RegExp, what: string, ms = 5000): Promise<RegExpMatchArray> {
  await eventually(() => pattern.test(started.output()), `${what} in:\n${started.output()}`, ms);
  return pattern.exec(started.output()) as RegExpMatchArray;
}

/** Waits for the server's two "listening" lines. @returns the WebSocket and TCP ports. */
export async function serverPorts(started: Spawned, ms = 5000): Promise<{ ws: number; tcp: number }> {
  const pattern = /WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)[\s\S]*TCP broadcast listening on tcp:\/\/127\.0\.0\.1:(\d+)/;
  const match = await waitFor(started, pattern, "the server's two listening lines", ms);
  return { ws: Number(match[1]), tcp: Number(match[2]) };
}

/** Waits for `child` to exit. @returns its exit code and signal. */
export async function exited(child: ChildProcess, ms = 10_000): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) return [child.exitCode, child.signalCode];
  return within(
    new Promise((resolve) => child.once("exit", (code, signal) => resolve([code, signal]))),
    `process ${child.pid} to exit`,
    ms,
  );
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Which of `pids` holds the server side of each TCP connection from 127.0.0.1:`clientPort` to
 * `serverPort`, read from the kernel (/proc/net/tcp and each process's open descriptors), not
 * from anything the server says. @returns client port -> pid (absent: nobody of `pids` holds it).
 */
export async function socketOwners(serverPort: number, clientPorts: number[], pids: number[]): Promise<Map<number, number>> {
  const inodes = new Map<string, number>(); // socket inode -> client port
  const wanted = new Set(clientPorts);
  for (const line of (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = Number.parseInt((fields[1] as string).split(":")[1] as string, 16);
    const remote = Number.parseInt((fields[2] as string).split(":")[1] as string, 16);
    if (local === serverPort && wanted.has(remote)) inodes.set(fields[9] as string, remote);
  }
  const owners = new Map<number, number>();
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const port = inode === undefined ? undefined : inodes.get(inode);
      if (port !== undefined) owners.set(port, pid);
    }
  }
  return owners;
}

/** SIGKILLs every process group `spawnProject(..., true)` started into `groups` (for afterEach). */
export function stopGroups(groups: ChildProcess[]): void {
  for (const child of groups.splice(0)) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group has already exited
    }
  }
}

/** The live workers of a `--workers` server, in the order they started (as its primary logged them). */
export function startedWorkers(server: Spawned): number[] {
  const started = [...server.output().matchAll(/worker (\d+) \(pid (\d+)\) started/g)].map((m) => Number(m[2]));
  return started.filter(alive);
}

/** The connectToWorker call placing a connection now: callers take turns (see there). */
let placing: Promise<unknown> = Promise.resolve();

/**
 * Connects to a `--workers` server until the kernel shows the connection held by its worker
 * `node` (the order of `startedWorkers`; the primary deals connections round robin). Calls take
 * turns: callers connecting at once in lockstep could each keep getting the other's worker.
 */
export function connectToWorker<C>(...args: Placement<C>): Promise<C> {
  const placed = placing.then(() => placeOnWorker(...args));
  placing = placed.catch(() => undefined);
  return placed;
}

/** connectToWorker's arguments: the server, the worker's index, the port, and how to open, read the socket of and close a client. */
type Placement<C> = [
  server: Spawned,
  node: number,
  port: number,
  open: () => Promise<C>,
  socket: (c: C) => Socket,
  close: (c: C) => Promise<void>,
];

async function placeOnWorker<C>(...[server, node, port, open, socket, close]: Placement<C>): Promise<C> {
  const pid = startedWorkers(server)[node] as number;
  for (let attempt = 0; attempt < 20; attempt++) {
    const client = await open();
    const local = socket(client).localPort as number;
    // Not read meanwhile, so that a server's refusal (a close frame) cannot end the connection
    // before its owner is known; a TCP connection may still be on its way from the primary.
    socket(client).pause();
    let owner: number | undefined;
    const deadline = Date.now() + 2000;
    while (owner === undefined && Date.now() < deadline) owner = (await socketOwners(port, [local], startedWorkers(server))).get(local);
    socket(client).resume();
    if (owner === pid) return client;
    await close(client);
  }
  throw new Error(`no connection landed on worker ${pid} in 20 attempts`);
}
