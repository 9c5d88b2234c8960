import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/*
 * The two packages as users get them: `npm pack` of each workspace (scripts off: `npm test` has
 * just built dist/, and a rebuild here would pull dist/ from under the other test files), then
 * installed from the tarballs into fresh projects with their dependencies from the registry:
 * the library alone as a production install, and the server with the library beside it.
 */

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string): string => join(root, "node_modules", ".bin", name);
let work: string;
const tarballs: Record<string, string> = {};
let library: string;
let server: string;

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

/** A new ESM project folder under the work folder. */
async function project(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  await writeFile(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  return dir;
}

/** The packages installed in `dir`'s node_modules, by name. */
async function installed(dir: string): Promise<string[]> {
  const out = await run("npm", ["ls", "--all", "--parseable"], dir);
  const paths = out.trim().split("\n").slice(1); // the first line is the project itself
  return [...new Set(paths.map((path) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)))].sort();
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ws-channels-pack-"));
  const args = ["pack", "--ignore-scripts", "--json", "--pack-destination", work, "-w", "packages/ws-channels", "-w", "packages/server"];
  for (const { name, filename } of JSON.parse(await run("npm", args, root)) as { name: string; filename: string }[]) {
    tarballs[name] = join(work, filename);
  }
  library = await project("library-user");
  server = await project("server-user");
  const install = ["install", "--no-audit", "--no-fund"];
  await Promise.all([
    run("npm", [...install, "--omit=dev", tarballs["ws-channels"]!], library, 180_000),
    // What a TypeScript user on Node 20 installs beside the packages: Node's and ws's types.
    run("npm", [...install, tarballs["ws-channels"]!, tarballs["@ws-channels/server"]!, "@types/node@20", "@types/ws@8"], server, 180_000),
  ]);
}, 240_000);

afterAll(() => rm(work, { recursive: true, force: true }));

describe("the packed tarballs", () => {
  it.each([
    ["ws-channels", "packages/ws-channels"],
    ["@ws-channels/server", "packages/server"],
  ])("%s holds dist/, README.md, LICENSE and package.json (the server its page/ too), and nothing else", async (name, folder) => {
    const files = await filesUnder(join(server, "node_modules", name));
    const page = folder === "packages/server" ? (await filesUnder(join(root, folder, "page"))).map((f) => `page/${f}`) : [];
    expect(files.filter((f) => !f.startsWith("dist/")).sort()).toEqual(["LICENSE", "README.md", "package.json", ...page].sort());
    // dist/ is exactly the compiled src/: one .js and one .d.ts per module, no maps, no tests
    const modules = (await filesUnder(join(root, folder, "src"))).filter((f) => f.endsWith(".ts")).map((f) => f.replace(/\.ts$/, ""));
    const expected = modules.flatMap((m) => [`dist/${m}.js`, `dist/${m}.d.ts`]);
    expect(files.filter((f) => f.startsWith("dist/")).sort()).toEqual(expected.sort());
    if (name === "ws-channels") expect(files).toContain("dist/client/connection.js"); // the client, its own folder
    if (name === "ws-channels") expect(files).toContain("dist/api/client.js"); // the API client, its own folder
  });

  it.each(["ws-channels", "@ws-channels/server"])(
    "%s passes publint (strict) and arethetypeswrong (ESM-only profile)",
    async (name) => {
      await run(bin("publint"), ["run", tarballs[name]!, "--strict"], root);
      await run(bin("attw"), [tarballs[name]!, "--profile", "esm-only", "--no-color", "--no-emoji"], root);
    },
    60_000,
  );
});

describe("the library installed alone (npm install --omit=dev ws-channels)", () => {
  it("brings ws and nothing else", async () => {
    const packages = await installed(library);
    console.log(`the library alone installs ${packages.length} packages: ${packages.join(", ")}`);
    expect(packages).toEqual(["ws", "ws-channels"]);
  });

  it("broadcasts to a ws client; ws-channels/redis without ioredis says which package to install", async () => {
    const script = `
      import { Channels } from "ws-channels";
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
      const redis = await import("ws-channels/redis").then(() => "loaded", (error) => error.message);
      const { Client } = await import("ws-channels/client");
      const { ApiClient, ApiError } = await import("ws-channels/api");
      console.log(JSON.stringify({ result, data: String(data), redis, client: typeof Client, api: [typeof ApiClient, typeof ApiError] }));
    `;
    await writeFile(join(library, "use.mjs"), script);
    const out = JSON.parse((await run(process.execPath, ["use.mjs"], library, 30_000)).trim()) as Record<string, unknown>;
    expect(out).toMatchObject({
      result: { delivered: 1, failed: 0, dropped: 0 },
      data: "hello",
      client: "function",
      api: ["function", "function"],
    });
    expect(out.redis).toMatch(/ws-channels\/redis needs the "ioredis" package.*npm install ioredis/);
  }, 40_000);
});

describe("the server installed with the library", () => {
  it("runs from an ESM file: startServer answers a join and serves the page", async () => {
    const script = `
      import { startServer } from "@ws-channels/server";
      import WebSocket from "ws";
      import { once } from "node:events";

      const server = await startServer({ port: 0, tcpPort: 0 });
      const peer = new WebSocket("ws://127.0.0.1:" + server.ws.port);
      await once(peer, "open");
      peer.send(JSON.stringify({ join: "lobby" }));
      const [reply] = await once(peer, "message");
      peer.close();
      // the page, and the client modules it imports from the installed library
      const status = async (path) => (await fetch("http://127.0.0.1:" + server.ws.port + path)).status;
      const page = [await status("/"), await status("/page/app.js"), await status("/client.js")];
      await server.close();
      console.log(JSON.stringify({ reply: JSON.parse(String(reply)), page }));
    `;
    await writeFile(join(server, "use.mjs"), script);
    const out = await run(process.execPath, ["use.mjs"], server, 30_000);
    expect(JSON.parse(out.trim())).toMatchObject({ reply: { joined: "lobby" }, page: [200, 200, 200] });
  }, 40_000);

  it.each(["nodenext", "bundler"])(
    "type-checks a consumer with moduleResolution %s",
    async (resolution) => {
      const consumer = `
      import { Channels, type BroadcastResult, type ChannelId, type Member } from "ws-channels";
      import { startServer, type RunningServer } from "@ws-channels/server";
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
      const dir = join(server, resolution);
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
    const out = await run("npx", ["--no-install", "ws-channels", "--help"], server, 30_000);
    expect(out).toContain("Usage: ws-channels");
    expect(out).toContain("--tcp-port");
  });

  it.each(["ws-channels", "@ws-channels/server"])("%s carries the MIT license it declares", async (name) => {
    const dir = join(server, "node_modules", name);
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { license: string };
    expect(manifest.license).toBe("MIT");
    expect(await readFile(join(dir, "LICENSE"), "utf8")).toMatch(/^MIT License/);
  });
});
