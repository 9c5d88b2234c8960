import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { Redis } from "ioredis";
import { SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../packages/ws-channels/src/api.js";
import { checkedApi, freshFetch, KEY } from "./api-check.js";
import { RedisServer } from "./brokers/redis-server.js";
import { eventually, WsClient } from "./helpers.js";
import { connectToWorker, exited, killAll, type Spawned, spawnProject, startedWorkers, waitFor } from "./processes.js";

const SECRET = "s".repeat(32);
const children: ChildProcess[] = [];
const clients: WsClient[] = [];
const redis = new RedisServer();
beforeAll(() => redis.start(), 10_000);
afterAll(() => redis.stop());
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  killAll(children);
});

const API_LINE = /API listening on http:\/\/127\.0\.0\.1:(\d+)/g;

/** Starts the CLI with `args`, the API on and its key in the environment. @returns it, its WebSocket port and its API. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}, apis = 1): Promise<{ server: Spawned; port: number; api: ApiClient }> {
  const flags = ["--port", "0", "--tcp-port", "0", "--api-port", "0", "--history-size", "100", "--log-level", "debug", ...args];
  const server = spawnProject(children, process.execPath, ["packages/server/dist/cli.js", ...flags], { WS_CHANNELS_API_KEY: KEY, ...env });
  await eventually(() => [...server.output().matchAll(API_LINE)].length === apis, `${apis} API listening lines`, 10_000);
  const port = Number((await waitFor(server, /WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)/, "the WebSocket line"))[1]);
  const apiPort = Number([...server.output().matchAll(API_LINE)][0]?.[1]);
  const { api } = await checkedApi(`http://127.0.0.1:${apiPort}`, KEY, freshFetch);
  return { server, port, api };
}

async function join(c: WsClient, channel: string): Promise<WsClient> {
  c.send({ join: channel });
  await c.next();
  return c;
}

describe("the server API on --workers 2", () => {
  /** A client of `sub` on worker `node`, as the kernel shows it. */
  async function on(server: Spawned, port: number, node: 0 | 1, sub: string): Promise<WsClient> {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setExpirationTime("1h")
      .sign(Buffer.from(SECRET));
    const c = await connectToWorker(
      server,
      node,
      port,
      () => WsClient.open(`ws://127.0.0.1:${port}/?token=${token}`),
      (c) => (c.ws as unknown as { _socket: Socket })._socket,
      (c) => c.close(),
    );
    clients.push(c);
    return c;
  }

  it("every worker answers, and each method's effect spans both workers", async () => {
    // verified ids (JWT), so that one id holds a connection on each worker
    const { server, port, api } = await cli(["--workers", "2"], { WS_CHANNELS_JWT_SECRET: SECRET }, 2);
    await eventually(() => startedWorkers(server).length === 2, "both workers", 10_000);
    const ann = [await join(await on(server, port, 0, "ann"), "room"), await join(await on(server, port, 1, "ann"), "room")];
    await join(ann[0] as WsClient, "only:0");
    await join(ann[1] as WsClient, "only:1");

    const published = await api.publish("room", "hi");
    expect(published).toEqual({ offset: 1, epoch: expect.any(String) });
    for (const c of ann) expect(await c.next()).toEqual({ to: "room", say: "hi", offset: 1, epoch: published.epoch });
    expect(await api.broadcast(["room"], "again")).toEqual({ results: [{ channel: "room", offset: 2, epoch: published.epoch }] });
    for (const c of ann) expect(await c.next()).toMatchObject({ say: "again", offset: 2 });
    expect(await api.send(["ann", "bob"], 7)).toEqual({ unknown: ["bob"] });
    for (const c of ann) expect(await c.next()).toEqual({ from: null, payload: 7 });
    expect((await api.presence("room")).members.map((m) => m.id)).toEqual(["ann", "ann"]);
    expect(await api.presenceStats("room")).toEqual({ connections: 2, users: 1 });
    expect((await api.history("room")).publications).toEqual([
      { say: "hi", offset: 1 },
      { say: "again", offset: 2 },
    ]);
    expect((await api.channels()).channels).toEqual([
      { name: "only:0", connections: 1 },
      { name: "only:1", connections: 1 },
      { name: "room", connections: 2 },
    ]);
    // each request on a connection of its own: the workers took turns
    const answered = () => new Set([...server.output().matchAll(/"worker":(\d+)[^\n]*"msg":"api request"/g)].map((m) => m[1]));
    await eventually(() => answered().size === 2, "both workers to have answered");
    expect(await api.disconnect("ann")).toEqual({ closed: 2 });
    for (const c of ann) expect(await c.closedBy()).toEqual({ code: 4000, reason: "disconnected" });
  }, 40_000);
});

describe("the server API on two servers sharing a redis-server", () => {
  it("publish reaches the other server's members; presence, history, channels and disconnect span both", async () => {
    const a = await cli(["--redis", redis.path]);
    const b = await cli(["--redis", redis.path]);
    const open = async (port: number, id: string) => {
      const c = await WsClient.open(`ws://127.0.0.1:${port}/?id=${id}`);
      clients.push(c);
      return join(c, "room");
    };
    const onA = await open(a.port, "ann");
    const onB = await open(b.port, "bob");

    const published = await a.api.publish("room", { text: "from the backend" });
    expect(published).toEqual({ offset: 1, epoch: expect.any(String) });
    for (const c of [onA, onB]) expect(await c.next()).toEqual({ to: "room", say: { text: "from the backend" }, ...published });
    onB.send({ say: "from bob", to: "room" });
    expect(await onA.next()).toMatchObject({ say: "from bob", from: "bob", offset: 2 });
    await onB.next();
    expect(await b.api.history("room")).toEqual({
      publications: [
        { say: { text: "from the backend" }, offset: 1 },
        { say: "from bob", from: "bob", offset: 2 },
      ],
      ...published,
      offset: 2,
    });
    // each server writes its entries to Redis as its members join: read through the other server's API
    let ids: (string | null)[] = [];
    for (let i = 0; i < 100 && ids.length < 2; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      ids = (await a.api.presence("room")).members.map((m) => m.id).sort();
    }
    expect(ids).toEqual(["ann", "bob"]);
    expect(await b.api.presenceStats("room")).toEqual({ connections: 2, users: 2 });
    expect(await a.api.send(["bob"], "psst")).toEqual({ unknown: [] });
    expect(await onB.next()).toEqual({ from: null, payload: "psst" });
    expect(await a.api.channels()).toEqual({ channels: [{ name: "room", connections: 2 }] });
    expect(await a.api.disconnect("bob")).toEqual({ closed: 1 });
    expect(await onB.closedBy()).toEqual({ code: 4000, reason: "disconnected" });
    expect(onA.ws.readyState).toBe(1);
  }, 40_000);
});

describe("questions between servers on Redis", () => {
  it("a subscriber that never answers is waited for within a bound; forged questions and answers are dropped", async () => {
    const a = await cli(["--redis", redis.path]);
    // an id and a channel of their own: the servers SIGKILLed by the tests before leave their claims in Redis until they expire
    const member = await WsClient.open(`ws://127.0.0.1:${a.port}/?id=cat`);
    clients.push(await join(member, "hall"));
    const silent = new Redis(redis.path);
    const forger = new Redis(redis.path);
    try {
      await silent.subscribe("ws-channels:ask:all"); // counted by PUBLISH, answers nothing
      // answered within the client's 10 s bound, with what the nodes that answered have
      expect(await a.api.channels()).toEqual({ channels: [{ name: "hall", connections: 1 }] });
      // not JSON, the wrong shape, an answer to no question: the server answers nothing and stays up
      for (const message of ["nope", '{"from": 1}', JSON.stringify({ from: "x", request: 1, question: "{" })])
        await forger.publish("ws-channels:ask:all", message);
      await forger.publish("ws-channels:answer:anyone", JSON.stringify({ request: 0, answer: "[]" }));
      expect(await a.api.disconnect("nobody")).toEqual({ closed: 0 });
      expect(member.ws.readyState).toBe(1);
    } finally {
      silent.disconnect();
      forger.disconnect();
    }
  }, 30_000);
});

describe("the CLI's API flags", () => {
  it("exit 1 before anything listens for --api-port without a key, a key under 32 bytes, a missing key file, or two keys", async () => {
    const dir = await mkdtemp(joinPath(tmpdir(), "ws-channels-api-key-"));
    try {
      await writeFile(joinPath(dir, "short.key"), `${"x".repeat(31)}\n`);
      await writeFile(joinPath(dir, "good.key"), `${KEY}\n`);
      const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
        [[], {}, /--api-port needs --api-key-file or WS_CHANNELS_API_KEY/],
        [["--api-key-file", joinPath(dir, "short.key")], {}, /the API key must be at least 32 bytes, got 31/],
        [["--api-key-file", joinPath(dir, "missing.key")], {}, /--api-key-file .*missing\.key: ENOENT/],
        [["--api-key-file", joinPath(dir, "good.key")], { WS_CHANNELS_API_KEY: KEY }, /give one API key/],
      ];
      for (const [flags, env, reason] of cases) {
        const args = ["packages/server/dist/cli.js", "--port", "0", "--tcp-port", "0", "--api-port", "0", ...flags];
        const started = spawnProject(children, process.execPath, args, { WS_CHANNELS_API_KEY: "", ...env });
        expect(await exited(started.child)).toEqual([1, null]);
        expect(started.output()).toMatch(reason);
        expect(started.output()).not.toMatch(/listening/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
