import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/*
 * The package as a user gets it: `npm pack` (scripts off: `npm test` has just built dist/, and a
 * rebuild here would pull dist/ from under the other test files), installed from the tarball into
 * a fresh project with its dependencies from the registry, then imported, type-checked and run.
 */

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string): string => join(root, "node_modules", ".bin", name);
let work: string;
let tarball: string;
let project: string;

/** Runs a command to completion. @returns its output; rejects with it on a non-zero exit. */
function run(command: string, args: string[], cwd: string, ms = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, timeout: ms, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        const out = `${stdout}${stderr}`;
        if (error) reject(new Error(`${command} ${args.join(" ")} failed (${error.message}):\n${out}`));
        else resolve(out);
      },
    );
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ws-channels-pack-"));
  const packed = JSON.parse(await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], root)) as {
    filename: string;
  }[];
  tarball = join(work, packed[0]!.filename);
  project = join(work, "consumer");
  await mkdir(project);
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // What a TypeScript user on Node 20 installs beside the package: Node's own types.
  await run("npm", ["install", "--no-audit", "--no-fund", tarball, "@types/node@20"], project, 180_000);
}, 240_000);

afterAll(() => rm(work, { recursive: true, force: true }));

describe("the packed tarball", () => {
  it("holds dist/, README.md, LICENSE, CHANGELOG.md and package.json, and nothing else", async () => {
    const files = await filesUnder(join(project, "node_modules", "ws-channels"));
    const outside = files.filter((f) => !f.startsWith("dist/"));
    expect(outside.sort()).toEqual(["CHANGELOG.md", "LICENSE", "README.md", "package.json"]);
    // dist/ is exactly the compiled src/: one .js and one .d.ts per module, no maps, no tests
    const modules = (await filesUnder(join(root, "src"))).filter((f) => f.endsWith(".ts")).map((f) => f.replace(/\.ts$/, ""));
    const expected = modules.flatMap((m) => [`dist/${m}.js`, `dist/${m}.d.ts`]);
    expect(files.filter((f) => f.startsWith("dist/")).sort()).toEqual(expected.sort());
  });

  it("passes publint (strict) and arethetypeswrong (ESM-only profile)", async () => {
    await run(bin("publint"), ["run", tarball, "--strict"], root);
    await run(bin("attw"), [tarball, "--profile", "esm-only", "--no-color", "--no-emoji"], root);
  }, 60_000);

  it("runs from an ESM file: a Channels broadcasts to a ws client, and startServer answers a join", async () => {
    const script = `
      import { Channels } from "ws-channels";
      import { startServer } from "ws-channels/server";
      import WebSocket, { WebSocketServer } from "ws";
      import { once } from "node:events";

      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      await once(wss, "listening");
      const channels = new Channels();
      wss.on("connection", (ws) => channels.join("room", ws));
      const client = new WebSocket("ws://127.0.0.1:" + wss.address().port);
      await once(client, "open");
      while (channels.count("room") === 0) await new Promise((r) => setImmediate(r));
      const got = once(client, "message");
      const result = await channels.broadcast("room", "hello");
      const [data] = await got;
      client.close();
      wss.close();

      const server = await startServer({ port: 0, tcpPort: 0 });
      const peer = new WebSocket("ws://127.0.0.1:" + server.ws.port);
      await once(peer, "open");
      peer.send(JSON.stringify({ join: "lobby" }));
      const [reply] = await once(peer, "message");
      peer.close();
      await server.close();
      console.log(JSON.stringify({ result, data: String(data), reply: String(reply) }));
    `;
    await writeFile(join(project, "use.mjs"), script);
    const out = await run(process.execPath, ["use.mjs"], project, 30_000);
    expect(JSON.parse(out.trim())).toEqual({
      result: { delivered: 1, failed: 0, dropped: 0 },
      data: "hello",
      reply: JSON.stringify({ joined: "lobby" }),
    });
  }, 40_000);

  it.each(["nodenext", "bundler"])(
    "type-checks a consumer with moduleResolution %s",
    async (resolution) => {
      const consumer = `
      import { Channels, type BroadcastResult, type ChannelId, type Member } from "ws-channels";
      import { startServer, type RunningServer } from "ws-channels/server";
      import { WebSocket } from "ws";

      const channels = new Channels<{ user: string }>({ sharder: (channel: ChannelId) => (channel === "big" ? 16 : 1) });
      declare const ws: WebSocket;
      channels.join("room", ws, { user: "ann" });
      const names: string[] = channels.reduce("room", [] as string[], (acc, { meta }) => [...acc, meta.user]);
      const member: Member = { send: (data: string | Uint8Array) => void data };
      const result: Promise<BroadcastResult> = channels.broadcast("room", "hi", { except: member });
      const server: Promise<RunningServer> = startServer({ port: 0, tcpPort: 0 });
      export { names, result, server };
    `;
      const dir = join(project, resolution);
      await mkdir(dir);
      await writeFile(join(dir, "consumer.ts"), consumer);
      const module = resolution === "bundler" ? "preserve" : "nodenext";
      const tsconfig = {
        compilerOptions: { module, moduleResolution: resolution, target: "es2022", strict: true, noEmit: true, types: ["node"] },
        files: ["consumer.ts"],
      };
      await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
      // a package.json marking the folder ESM, as a nodenext consumer of an ESM-only package must be
      await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
      await run(bin("tsc"), ["-p", "tsconfig.json"], dir, 60_000);
    },
    70_000,
  );

  it("has a working binary: npx ws-channels --help", async () => {
    const out = await run("npx", ["--no-install", "ws-channels", "--help"], project, 30_000);
    expect(out).toContain("Usage: ws-channels");
    expect(out).toContain("--tcp-port");
  });

  it("carries the MIT license it declares", async () => {
    const installed = join(project, "node_modules", "ws-channels");
    const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as { license: string };
    expect(manifest.license).toBe("MIT");
    expect(await readFile(join(installed, "LICENSE"), "utf8")).toMatch(/^MIT License/);
  });
});
