import type { IncomingMessage } from "node:http";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { startServer } from "../packages/server/src/server.js";
import { ApiError } from "../packages/ws-channels/src/api.js";
import { Client } from "../packages/ws-channels/src/client.js";
import { checkedApi, KEY } from "./api-check.js";
import { eventually, serverPerTest, WsClient } from "./helpers.js";

const servers = serverPerTest({ port: 0, tcpPort: false, apiPort: 0, apiKey: KEY });

/** A server with the API (and `options`), its checked client, and a member of `room` with id `ann`. */
async function start(options: Parameters<typeof servers.start>[0] = {}) {
  const server = await servers.start(options);
  const base = `http://127.0.0.1:${server.api?.port}`;
  const { api, fetch } = await checkedApi(base);
  const member = servers.closeAfter(await WsClient.open(`ws://127.0.0.1:${server.ws.port}/?id=ann`));
  member.send({ join: "room" });
  await member.next();
  return { server, base, api, fetch, member };
}

/** The error a call rejects with. */
async function refusal(call: Promise<unknown>): Promise<ApiError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe("the server API on one process", () => {
  it("publish and broadcast say into channels as the server, with no from", async () => {
    const { api, member } = await start();
    expect(await api.publish("room", { text: "hi" })).toEqual({});
    expect(await member.next()).toEqual({ to: "room", say: { text: "hi" } });
    expect(await api.broadcast(["room", "empty"], 2)).toEqual({ results: [{ channel: "room" }, { channel: "empty" }] });
    expect(await member.next()).toEqual({ to: "room", say: 2 });
  });

  it("with history: publish answers the offset and epoch, history reads after a position, at most limit", async () => {
    const { api, member } = await start({ historySize: 3 });
    const first = await api.publish("room", "a");
    expect(first).toEqual({ offset: 1, epoch: expect.any(String) });
    expect(await member.next()).toEqual({ to: "room", say: "a", offset: 1, epoch: first.epoch });
    member.send({ say: "b", to: "room" });
    await member.next();
    const { results } = await api.broadcast(["room", "other"], "c");
    expect(results).toEqual([
      { channel: "room", offset: 3, epoch: first.epoch },
      { channel: "other", offset: 1, epoch: expect.any(String) },
    ]);
    const all = await api.history("room");
    expect(all).toEqual({
      publications: [
        { say: "a", offset: 1 },
        { say: "b", from: "ann", offset: 2 },
        { say: "c", offset: 3 },
      ],
      offset: 3,
      epoch: first.epoch,
    });
    expect((await api.history("room", { since: { offset: 1, epoch: first.epoch as string }, limit: 1 })).publications).toEqual([
      { say: "b", from: "ann", offset: 2 },
    ]);
    // a position of another epoch: from the oldest kept, and the epoch tells
    expect((await api.history("room", { since: { offset: 2, epoch: "gone" } })).publications).toHaveLength(3);
    await api.publish("room", "d"); // the ring keeps 3
    expect((await api.history("room")).publications.map((p) => p.offset)).toEqual([2, 3, 4]);
  });

  it("history on a server without it is 400 history_off", async () => {
    const { api } = await start();
    expect(await refusal(api.history("room"))).toMatchObject({ status: 400, code: "history_off" });
  });

  it("send reaches every connection of an id as from null, and names the unknown ids", async () => {
    const { server, api, member } = await start();
    const second = servers.closeAfter(await WsClient.open(`ws://127.0.0.1:${server.ws.port}/?id=bob`));
    expect(await api.send(["ann", "bob", "nobody"], { hello: 1 })).toEqual({ unknown: ["nobody"] });
    expect(await member.next()).toEqual({ from: null, payload: { hello: 1 } });
    expect(await second.next()).toEqual({ from: null, payload: { hello: 1 } });
  });

  it("presence and presence_stats list the channel's connections and count users by id", async () => {
    const { server, api } = await start();
    const again = servers.closeAfter(await WsClient.open(`ws://127.0.0.1:${server.ws.port}/`));
    again.send({ join: "room" });
    await again.next();
    const { members } = await api.presence("room");
    expect(members).toHaveLength(2);
    expect(members).toEqual(
      expect.arrayContaining([
        { ref: expect.any(String), id: "ann" },
        { ref: expect.any(String), id: null },
      ]),
    );
    expect(await api.presenceStats("room")).toEqual({ connections: 2, users: 2 });
    expect(await api.presenceStats("nowhere")).toEqual({ connections: 0, users: 0 });
  });

  it("disconnect closes every connection of the id with 4000 disconnected, and the client library stops", async () => {
    // verified ids: one id may hold several connections
    const authenticate = (request: IncomingMessage) => ({ id: new URL(request.url ?? "/", "http://x").searchParams.get("id") ?? "" });
    const { server, api, member } = await start({ authenticate });
    const url = `ws://127.0.0.1:${server.ws.port}/?id=ann`;
    const { default: WebSocket } = await import("ws");
    const client = new Client(url, { WebSocket: WebSocket as never });
    const states: { state: string; code?: number }[] = [];
    client.on("state", (state) => states.push(state));
    await eventually(() => server.connections().connections === 2, "the library client to connect");
    expect(await api.disconnect("ann")).toEqual({ closed: 2 });
    expect(await member.closedBy()).toEqual({ code: 4000, reason: "disconnected" });
    await eventually(() => states.at(-1)?.state === "closed", "the client library to stop");
    expect(states.at(-1)).toMatchObject({ state: "closed", code: 4000, reason: "disconnected" });
    expect(await api.disconnect("ann")).toEqual({ closed: 0 });
    client.close();
  });

  it("channels lists live channels with their connections, by prefix, a page at a time", async () => {
    const { server, api } = await start();
    const other = servers.closeAfter(await WsClient.open(`ws://127.0.0.1:${server.ws.port}/`));
    for (const channel of ["room", "room:b", "room:a", "lobby"]) other.send({ join: channel });
    for (let i = 0; i < 4; i++) await other.next();
    expect(await api.channels()).toEqual({
      channels: [
        { name: "lobby", connections: 1 },
        { name: "room", connections: 2 },
        { name: "room:a", connections: 1 },
        { name: "room:b", connections: 1 },
      ],
    });
    const first = await api.channels({ prefix: "room", limit: 2 });
    expect(first.channels.map((c) => c.name)).toEqual(["room", "room:a"]);
    expect(first.cursor).toEqual(expect.any(String));
    const next = await api.channels({ prefix: "room", limit: 2, cursor: first.cursor as string });
    expect(next).toEqual({ channels: [{ name: "room:b", connections: 1 }] });
    other.send({ leave: "lobby" });
    await other.next();
    expect((await api.channels({ prefix: "lob" })).channels).toEqual([]);
  });
});

describe("the server API's refusals, logs and metrics", () => {
  it("401 (one body for every reason), 400 naming the field, 413 and 404 each change nothing", async () => {
    const { api, base, fetch, member } = await start({ historySize: 10 });
    const post = async (path: string, body: string, headers: Record<string, string> = { "x-api-key": KEY }) => {
      const answer = await fetch(`${base}${path}`, { method: "POST", headers, body });
      return { status: answer.status, body: (await answer.json()) as { error: { code: string; message: string } } };
    };
    const good = JSON.stringify({ channel: "room", data: "nope" });
    const unauthorized = { status: 401, body: { error: { code: "unauthorized", message: "a valid API key is required" } } };
    for (const headers of [
      {},
      { "x-api-key": `${KEY}x` },
      { "x-api-key": "short" },
      { authorization: `Bearer ${KEY}` },
      { authorization: `apikey ${KEY.slice(1)}` },
    ])
      expect(await post("/api/publish", good, headers)).toEqual(unauthorized);
    expect(await post("/api/nope", good, {})).toEqual(unauthorized); // the key before the route: no map of the API without it
    expect(await post("/api/publish", good, { authorization: `ApiKey ${KEY}` })).toMatchObject({ status: 200 });
    await member.next(); // that one was meant
    const invalid = async (body: string, field: RegExp) => {
      const answer = await post("/api/publish", body);
      expect(answer.status).toBe(400);
      expect(answer.body.error.message).toMatch(field);
    };
    await invalid("{not json", /not JSON/);
    await invalid(JSON.stringify({ data: 1 }), /required property 'channel'/);
    await invalid(JSON.stringify({ channel: "room" }), /required property 'data'/);
    await invalid(JSON.stringify({ channel: "", data: 1 }), /body\/channel/);
    await invalid(JSON.stringify({ channel: "x".repeat(129), data: 1 }), /body\/channel must NOT have more than 128 characters/);
    await invalid('{"channel": "\\ud800", "data": 1}', /body\/channel/);
    await invalid(JSON.stringify({ channel: "room", data: 1, to: "other" }), /additional properties/);
    await invalid(JSON.stringify({ channel: 5, data: 1 }), /body\/channel must be string/);
    expect(await refusal(api.history("room", { limit: -1 }))).toMatchObject({ status: 400, code: "invalid_body" });
    expect(await refusal(api.send([], 1))).toMatchObject({ status: 400, code: "invalid_body" });
    const large = JSON.stringify({ channel: "room", data: "x".repeat(1024 * 1024) });
    expect(await post("/api/publish", large)).toMatchObject({ status: 413, body: { error: { code: "too_large" } } });
    expect(await post("/api/nope", good)).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect((await fetch(`${base}/api/publish`, { headers: { "x-api-key": KEY } })).status).toBe(404); // GET
    // nothing was said: the next say the member gets is the next offset
    expect((await api.history("room")).publications.map((p) => p.say)).toEqual(["nope"]);
    await api.publish("room", "after");
    expect(await member.next()).toMatchObject({ say: "after", offset: 2 });
  });

  it("logs one line per request at debug (method, status, ms; no body, no key) and counts it in /metrics", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk, _encoding, done) => {
        lines.push(String(chunk));
        done();
      },
    });
    const { server, api } = await start({ logger: pino({ level: "debug" }, sink), adminPort: 0 });
    await api.publish("room", "secret-data");
    await refusal(api.publish("", 1));
    // written once the answer is sent: it may come after the client has it
    const requests = () =>
      lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.msg === "api request" && l.method === "publish");
    await eventually(() => requests().length === 2, "two request lines");
    expect(
      requests()
        .filter((l) => l.method === "publish")
        .map((l) => [l.status, typeof l.ms, l.level]),
    ).toEqual([
      [200, "number", 20],
      [400, "number", 20],
    ]);
    expect(lines.join("")).not.toMatch(/secret-data|kkkkkkkk/);
    const metrics = await (await fetch(`http://127.0.0.1:${server.admin?.port}/metrics`)).text(); // counted before the line
    expect(metrics).toMatch(/ws_channels_api_requests_total\{method="publish",status="200"\} 1/);
    expect(metrics).toMatch(/ws_channels_api_requests_total\{method="publish",status="400"\} 1/);
    expect(metrics).toMatch(/ws_channels_api_request_duration_seconds_count\{method="publish"\} 2/);
  });

  it("refuses to start with a key under 32 bytes, or a port without a key", async () => {
    await expect(servers.start({ apiKey: "x".repeat(31) })).rejects.toThrow(/at least 32 bytes, got 31/);
    await expect(startServer({ port: 0, tcpPort: false, apiPort: 0 })).rejects.toThrow(/apiPort needs apiKey/);
  });
});
