import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { parseFlags } from "../packages/server/src/flags.js";
import { type ServerOptions, secretKey } from "../packages/server/src/server.js";
import { serverPerTest, upgrade, WsClient } from "./helpers.js";

const fixture = serverPerTest({ port: 0, tcpPort: false });

async function start(options: ServerOptions = {}): Promise<string> {
  const server = await fixture.start(options);
  return `http://127.0.0.1:${server.ws.port}`;
}

/** One plain HTTP request with `method` to `path`, the path sent exactly as written. */
function send(base: string, method: string, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/`, { method, path }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.once("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

describe("the page on the WebSocket port", () => {
  it("GET / is the page with its test hooks; its script, style and config are under /page/", async () => {
    const base = await start();
    const page = await fetch(`${base}/?name=ann&channel=lobby`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await page.text();
    for (const hook of ["state", "name", "channel", "join", "message", "send", "messages", "members", "drop"])
      expect(html).toContain(`data-testid="${hook}"`);
    const app = await fetch(`${base}/page/app.js`);
    expect(app.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await app.text()).toContain('from "/client.js"');
    expect((await fetch(`${base}/page/style.css`)).headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(await (await fetch(`${base}/page/config.json`)).json()).toEqual({ history: false, ticker: null });
  });

  it("serves the client library's built modules, each one the entry imports, with no bundler", async () => {
    const base = await start();
    const entry = await fetch(`${base}/client.js`);
    expect(entry.status).toBe(200);
    expect(entry.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const source = await entry.text();
    expect(source).toMatch(/export \{[^}]*\bClient\b/);
    const imports = [...source.matchAll(/from "\.\/(client\/[\w./-]+\.js)"/g)].map((m) => m[1] as string);
    expect(imports.length).toBeGreaterThan(0);
    // and what those import in turn, all under /client/
    const seen = new Set<string>();
    for (let queue = imports; queue.length > 0 && seen.size < 100; ) {
      const path = queue.shift() as string;
      if (seen.has(path)) continue;
      seen.add(path);
      const module = await fetch(`${base}/${path}`);
      expect(module.status, path).toBe(200);
      const dir = path.slice(0, path.lastIndexOf("/") + 1);
      for (const m of (await module.text()).matchAll(/from "\.\/([\w./-]+\.js)"/g)) queue.push(`${dir}${m[1]}`);
    }
  });

  it("HEAD answers the headers alone; unknown paths 404; other methods 405; nothing outside the page is reachable", async () => {
    const base = await start();
    const head = await send(base, "HEAD", "/");
    expect(head.status).toBe(200);
    expect(Number(head.headers["content-length"])).toBeGreaterThan(100);
    expect(head.body).toBe("");
    for (const path of [
      "/index.html",
      "/page/",
      "/page/../package.json",
      "/../../package.json",
      "/client/../client.js.map",
      "/%2e%2e/src/server.ts",
    ])
      expect((await send(base, "GET", path)).status, path).toBe(404);
    const post = await send(base, "POST", "/");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
  });

  it("page: false (--no-page) answers every plain HTTP request 426, as before the page", async () => {
    const base = await start({ page: false });
    expect((await fetch(`${base}/`)).status).toBe(426);
    expect((await fetch(`${base}/page/app.js`)).status).toBe(426);
  });

  it("with a JWT key the page is off unless page: true (--page) asks for it", async () => {
    const jwt = { key: secretKey("s".repeat(64)) };
    expect((await fetch(`${await start({ jwt })}/`)).status).toBe(426);
    await fixture.server.close();
    expect((await fetch(`${await start({ jwt, page: true })}/`)).status).toBe(200);
  });

  it("the page's own origin may upgrade whatever allowedOrigins says; other origins still get 403, and all but the listed without the page", async () => {
    const allowedOrigins = ["https://app.example"];
    let base = await start({ allowedOrigins });
    const ws = base.replace("http", "ws");
    expect((await upgrade(`${ws}/`, { origin: base })).status).toBe(101);
    expect((await upgrade(`${ws}/`, { origin: "https://app.example" })).status).toBe(101);
    expect((await upgrade(`${ws}/`, { origin: "http://evil.example" })).status).toBe(403);
    // a page elsewhere that names this host is still another origin
    expect((await upgrade(`${ws}/`, { origin: base.replace("http:", "https:") })).status).toBe(403);
    await fixture.server.close();
    base = await start({ allowedOrigins, page: false });
    expect((await upgrade(`${base.replace("http", "ws")}/`, { origin: base })).status).toBe(403);
  });
});

describe("--demo's ticker", () => {
  it("says 1, 2, 3... into ticker from ticker, with offsets and no hole when history is on; the config tells the page", async () => {
    const base = await start({ demo: true, historySize: 100 });
    expect(await (await fetch(`${base}/page/config.json`)).json()).toEqual({ history: true, ticker: "ticker" });
    const c = await WsClient.open(`${base.replace("http", "ws")}/`);
    fixture.closeAfter(c);
    c.send({ join: "ticker" });
    const joined = (await c.next()) as { epoch: string; offset: number };
    const says: { say: number; offset: number; from: string; epoch: string }[] = [];
    for (let i = 0; i < 3; i++) says.push((await c.next()) as (typeof says)[number]);
    for (const [i, say] of says.entries()) {
      expect(say).toEqual({ to: "ticker", say: joined.offset + i + 1, from: "ticker", offset: joined.offset + i + 1, epoch: joined.epoch });
    }
  });

  it("without history the says carry no offset", async () => {
    const base = await start({ demo: true });
    const c = await WsClient.open(`${base.replace("http", "ws")}/`);
    fixture.closeAfter(c);
    c.send({ join: "ticker" });
    expect(await c.next()).toEqual({ joined: "ticker" });
    const first = (await c.next()) as { say: number };
    expect(first).toEqual({ to: "ticker", say: expect.any(Number), from: "ticker" });
    expect(await c.next()).toEqual({ to: "ticker", say: first.say + 1, from: "ticker" });
  });
});

describe("flags", () => {
  const argv = (...flags: string[]) => ["node", "ws-channels", ...flags];
  it("--page, --no-page and --demo", () => {
    expect(parseFlags(argv()).page).toBeUndefined();
    expect(parseFlags(argv("--page")).page).toBe(true);
    expect(parseFlags(argv("--no-page")).page).toBe(false);
    expect(parseFlags(argv()).demo).toBe(false);
    expect(parseFlags(argv("--demo")).demo).toBe(true);
  });
});
