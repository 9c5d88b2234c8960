import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { eventually, WsClient, within } from "./helpers.js";
import { exited, spawnProject, stopGroups, waitFor } from "./processes.js";

process.env.PORT = "0";
const { channels, wss } = await import("../examples/chat.js");
await within(once(wss, "listening"), "the example to listen");
const { port } = wss.address() as { port: number };
afterAll(() => new Promise((resolve) => wss.close(resolve)));

describe("the README example (examples/chat.ts), imported from the built package", () => {
  it("joins, says, lists users, and forgets a closed socket", async () => {
    const ann = await WsClient.open(`ws://127.0.0.1:${port}/?user=ann`);
    const bob = await WsClient.open(`ws://127.0.0.1:${port}/?user=bob`);
    ann.send({ op: "join", room: "lobby" });
    bob.send({ op: "join", room: "lobby" });
    // ann and bob are two connections: wait until both joins are in before anyone speaks
    await eventually(() => channels.count("lobby") === 2, "both to join");
    bob.send({ op: "say", room: "lobby", text: "hi" });
    expect(await ann.next()).toEqual({ room: "lobby", user: "bob", text: "hi" });
    ann.send({ op: "who", room: "lobby" });
    expect(await ann.next()).toEqual({ room: "lobby", users: ["ann", "bob"] });
    await bob.close();
    await eventually(() => channels.count("lobby") === 1, "bob to leave");
    await ann.close();
  });

  it("refuses bad messages without going down", async () => {
    for (const bad of ["not json", "null", "5", '{"op": "join"}']) {
      const client = await WsClient.open(`ws://127.0.0.1:${port}/`);
      client.ws.send(bad);
      expect((await client.closedBy()).code).toBeGreaterThanOrEqual(1007);
    }
    const still = await WsClient.open(`ws://127.0.0.1:${port}/?user=cy`);
    still.send({ op: "who", room: "empty" });
    expect(await still.next()).toEqual({ room: "empty", users: [] });
    await still.close();
  });
});

const groups: ChildProcess[] = [];
afterEach(() => stopGroups(groups));

/** Compiles examples/ into build/examples/ as the npm scripts' pre-step does (dist/ is built by npm test). */
async function compileExamples(): Promise<void> {
  const tsc = spawnProject(groups, join("node_modules", ".bin", "tsc"), ["-p", "examples"]);
  expect(await exited(tsc.child, 60_000), tsc.output()).toEqual([0, null]);
}

describe("each example runs with one command", () => {
  it("npm run example:chat: a client joins and hears its own say", async () => {
    await compileExamples();
    // --ignore-scripts skips only the pre-step's rebuild of dist/, which other test files are reading
    const started = spawnProject(groups, "npm", ["run", "example:chat", "--ignore-scripts"], { PORT: "0" }, true);
    const [, port] = await waitFor(started, /chat on ws:\/\/127\.0\.0\.1:(\d+)/, "the chat example to listen", 10_000);
    const ann = await WsClient.open(`ws://127.0.0.1:${port}/?user=ann`);
    ann.send({ op: "join", room: "lobby" });
    ann.send({ op: "say", room: "lobby", text: "hi" });
    expect(await ann.next()).toEqual({ room: "lobby", user: "ann", text: "hi" });
    await ann.close();
  }, 60_000);

  it("npm run example:cluster: a say reaches the room's members on both workers", async () => {
    await compileExamples();
    const started = spawnProject(groups, "npm", ["run", "example:cluster", "--ignore-scripts"], { PORT: "0", WORKERS: "2" }, true);
    const listening = /worker (\d+): chat on ws:\/\/127\.0\.0\.1:(\d+)/g;
    await waitFor(started, /chat on[\s\S]*chat on/, "both workers to listen", 15_000);
    const lines = [...started.output().matchAll(listening)];
    expect(new Set(lines.map((line) => line[1])).size).toBe(2);
    const port = lines[0]?.[2];
    expect(lines[1]?.[2]).toBe(port);
    // the primary hands connections to the workers in turn: four clients land on both
    const clients = await Promise.all([0, 1, 2, 3].map(() => WsClient.open(`ws://127.0.0.1:${port}/`)));
    for (const client of clients) {
      client.send({ op: "join", room: "lobby" });
      expect(await client.next()).toEqual({ joined: "lobby" });
    }
    clients[0]?.send({ op: "say", room: "lobby", text: "hi" });
    for (const client of clients) expect(await client.next()).toMatchObject({ room: "lobby", text: "hi" });
    await Promise.all(clients.map((client) => client.close()));
  }, 60_000);

  it("the README's first example, saved as server.mjs and run with node: a say reaches the room", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toContain("new Channels()");
    const dir = fileURLToPath(new URL("../build/readme/", import.meta.url));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "server.mjs"), block as string);
    const started = spawnProject(groups, process.execPath, [join(dir, "server.mjs")], { PORT: "0" }, true);
    const [, port] = await waitFor(started, /listening on .*port: (\d+)/, "the README example to listen", 10_000);
    const ann = await WsClient.open(`ws://127.0.0.1:${port}/lobby`);
    const bob = await WsClient.open(`ws://127.0.0.1:${port}/lobby`);
    const other = await WsClient.open(`ws://127.0.0.1:${port}/elsewhere`);
    // the server joins a socket in its connection handler, before the client sees the handshake
    bob.ws.send("bob here");
    expect(String((await bob.nextRaw()).data)).toBe("bob here");
    expect(String((await ann.nextRaw()).data)).toBe("bob here");
    ann.ws.send("hi");
    expect(String((await bob.nextRaw()).data)).toBe("hi");
    expect(String((await ann.nextRaw()).data)).toBe("hi");
    other.ws.send("only here");
    expect(String((await other.nextRaw()).data)).toBe("only here");
    await Promise.all([ann.close(), bob.close(), other.close()]);
  }, 30_000);
});

describe("npm run example:client", () => {
  it("a Node client drops its connection and recovers what was said meanwhile", async () => {
    await compileExamples();
    const started = spawnProject(groups, "npm", ["run", "example:client", "--ignore-scripts"], {}, true);
    await waitFor(started, /ann hears bob: "and now live" \(offset 3\)/, "the example to finish", 15_000);
    expect(started.output()).toMatch(/ann: reconnecting[\s\S]*ann hears bob: "said while ann was away" \(offset 2\)[\s\S]*recovered true/);
    expect(await exited(started.child, 10_000)).toEqual([0, null]);
  }, 60_000);
});
