// The functions handed to page.evaluate and waitForFunction run in Chromium: they need the DOM types.
/// <reference lib="dom" />
import type { ChildProcess } from "node:child_process";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, type ServerOptions, startServer } from "../packages/server/src/server.js";
import { killAll, serverPorts, spawnProject, waitFor } from "./processes.js";

/** Debian's chromium (`.ci/run` installs it); CHROMIUM names another. */
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** How long one wait in a page may take, in ms: a browser on two shared cores is slow to start. */
const WAIT = 20_000;

let browser: Browser;
let server: RunningServer | undefined;
const children: ChildProcess[] = [];
const pages: Page[] = [];

beforeAll(async () => {
  // --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox refuses to start
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], timeout: 30_000 });
}, 40_000);
afterAll(() => browser?.close());
afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.close()));
  await server?.close();
  server = undefined;
  killAll(children);
});

async function start(options: ServerOptions = {}): Promise<string> {
  server = await startServer({ port: 0, tcpPort: false, ...options });
  return `http://127.0.0.1:${server.ws.port}`;
}

/** A new page (its own context: its own storage) at `url`; errors in it fail the test. */
async function open(url: string): Promise<Page & { errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = Object.assign(await context.newPage(), { errors: [] as string[] });
  page.on("pageerror", (error) => page.errors.push(error.message));
  // every state the strip shows, in order, so that a short "reconnecting" is not missed
  await page.addInitScript(() => {
    const seen: string[] = [];
    Object.assign(window, { states: seen });
    new MutationObserver(() => {
      const state = document.querySelector('[data-testid="state"]')?.getAttribute("data-state");
      if (state && seen.at(-1) !== state) seen.push(state);
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  });
  pages.push(page);
  await page.goto(url);
  return page;
}

/** Waits until the element with `testid` holds `text` (or, with `absent`, no longer does). */
async function shows(page: Page, testid: string, text: string, absent = false): Promise<void> {
  await page.waitForFunction(
    ([id, expected, gone]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.includes(expected) !== gone,
    [testid, text, absent] as const,
    { timeout: WAIT },
  );
}

/** Waits until the page's chat room has joined (its `joined` reply came): says from then on reach it. */
const joined = (page: Page) => page.waitForSelector('[data-testid="messages"][data-joined]', { state: "attached", timeout: WAIT });
const state = (page: Page): Promise<string | null> => page.getAttribute('[data-testid="state"]', "data-state");
const opened = (page: Page) =>
  page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.getAttribute("data-state") === "open", null, {
    timeout: WAIT,
  });

/** The text of each child of `testid`'s list. */
const items = (page: Page, testid: string): Promise<string[]> =>
  page.$$eval(`[data-testid="${testid}"] > *`, (children) => children.map((child) => child.textContent ?? ""));

async function say(page: Page, text: string): Promise<void> {
  await page.fill('[data-testid="message"]', text);
  await page.click('[data-testid="send"]');
}

describe("the page in Chromium", () => {
  it("two pages exchange messages and see each other come and go in the member list", async () => {
    const base = await start();
    const ann = await open(`${base}/?name=ann&channel=lobby`);
    await opened(ann);
    await shows(ann, "members", "ann");
    // the second joins through the form
    const bob = await open(`${base}/`);
    await bob.fill('[data-testid="name"]', "bob");
    await bob.fill('[data-testid="channel"]', "lobby");
    await bob.click('[data-testid="join"]');
    await opened(bob);
    await shows(bob, "members", "ann");
    await shows(ann, "members", "bob");
    await shows(ann, "activity", "bob joined");
    await say(ann, "hello from ann");
    await shows(bob, "messages", "hello from ann");
    await say(bob, "hi ann");
    await shows(ann, "messages", "hi ann");
    for (const page of [ann, bob]) {
      expect(await items(page, "messages")).toEqual(["annhello from ann", "bobhi ann"]);
      expect(await items(page, "members")).toEqual(["ann", "bob"]);
    }
    // a drop is no leave on the page's side, but the server sees the socket go: bob sees ann leave and come back
    await ann.click('[data-testid="drop"]');
    await shows(bob, "activity", "ann left");
    await opened(ann);
    await bob.waitForFunction(
      () => document.querySelector('[data-testid="activity"]')?.lastElementChild?.textContent === "ann joined",
      null,
      {
        timeout: WAIT,
      },
    );
    expect(await ann.evaluate(() => (window as unknown as { states: string[] }).states)).toEqual([
      "connecting",
      "open",
      "reconnecting",
      "open",
    ]);
    await say(ann, "back");
    await shows(bob, "messages", "back");
    await bob.close();
    await shows(ann, "members", "bob", true);
    await shows(ann, "activity", "bob left");
    expect([...ann.errors, ...bob.errors]).toEqual([]);
  }, 60_000);

  it("with history, a page that was offline comes back and shows what it missed as replayed, and the ticker has no hole", async () => {
    const base = await start({ historySize: 100, demo: true });
    const ann = await open(`${base}/?name=ann&channel=lobby`);
    const bob = await open(`${base}/?name=bob&channel=lobby`);
    await Promise.all([joined(ann), joined(bob)]);
    await say(bob, "before");
    await shows(ann, "messages", "before");
    await shows(ann, "ticker", "3");
    await ann.click('[data-testid="offline"]'); // dropped, and every attempt fails for 5 s
    await ann.waitForFunction(() => document.querySelector('[data-testid="state"]')?.getAttribute("data-state") === "reconnecting", null, {
      timeout: WAIT,
    });
    expect(await ann.textContent('[data-testid="state"]')).toMatch(/^reconnecting: attempt \d+, next in \d+\.\d s, offline/);
    for (const text of ["missed 1", "missed 2", "missed 3"]) await say(bob, text);
    await shows(bob, "messages", "missed 3");
    expect(await state(ann)).toBe("reconnecting");
    expect(await items(ann, "messages")).toEqual(["bobbefore"]);
    await opened(ann);
    await shows(ann, "messages", "missed 3");
    expect(await items(ann, "messages")).toEqual(["bobbefore", "bobmissed 1replayed", "bobmissed 2replayed", "bobmissed 3replayed"]);
    await say(bob, "live");
    await shows(ann, "messages", "live");
    expect((await items(ann, "messages")).at(-1)).toBe("boblive");
    expect(await ann.isHidden('[data-testid="banner"]')).toBe(true);
    // five seconds away at five says a second: replayed cells, and the numbers run on with no hole
    const cells = await ann.$$eval('[data-testid="ticker"] > li', (all) =>
      all.map((li) => ({ n: li.textContent, replayed: li.className })),
    );
    expect(cells.filter((cell) => cell.replayed === "hole")).toEqual([]);
    expect(cells.filter((cell) => cell.replayed === "replayed").length).toBeGreaterThan(10);
    const numbers = cells.map((cell) => Number(cell.n));
    expect(numbers).toEqual(numbers.map((_, i) => (numbers[0] as number) + i));
    expect([...ann.errors, ...bob.errors]).toEqual([]);
  }, 60_000);

  it("when history no longer covers what was missed, the page says so in a banner", async () => {
    const base = await start({ historySize: 2 });
    const ann = await open(`${base}/?name=ann&channel=lobby`);
    const bob = await open(`${base}/?name=bob&channel=lobby`);
    await Promise.all([joined(ann), joined(bob)]);
    await ann.click('[data-testid="offline"]');
    await ann.waitForFunction(() => document.querySelector('[data-testid="state"]')?.getAttribute("data-state") === "reconnecting", null, {
      timeout: WAIT,
    });
    for (const text of ["one", "two", "three"]) await say(bob, text);
    await shows(bob, "messages", "three");
    await opened(ann);
    await shows(ann, "banner", "missing");
    expect(await ann.isVisible('[data-testid="banner"]')).toBe(true);
    expect(await items(ann, "messages")).toEqual([]);
  }, 60_000);

  it("works against the CLI with --workers 2: says reach pages on either worker, and each page lists itself", async () => {
    const started = spawnProject(children, process.execPath, [
      "packages/server/dist/cli.js",
      "--port",
      "0",
      "--tcp-port",
      "0",
      "--workers",
      "2",
    ]);
    const { ws } = await serverPorts(started, 10_000);
    await waitFor(started, /worker \d+ \(pid \d+\) started[\s\S]*worker \d+ \(pid \d+\) started/, "both workers", 10_000);
    const base = `http://127.0.0.1:${ws}`;
    // several pages, so that some land on each worker (the kernel decides)
    const names = ["ann", "bob", "cat", "dan"];
    const all = await Promise.all(names.map((name) => open(`${base}/?name=${name}&channel=lobby`)));
    await Promise.all(all.map(joined));
    // (each page listing all four across the workers is not asserted: see the race case of
    // test/presence/cluster.test.ts, which finds a fault in cluster presence)
    for (const [i, page] of all.entries()) await shows(page, "members", names[i] as string);
    for (const [i, page] of all.entries()) await say(page, `from ${names[i]}`);
    for (const page of all) for (const name of names) await shows(page, "messages", `from ${name}`);
    for (const page of all) expect(await items(page, "messages")).toHaveLength(names.length);
    expect(all.flatMap((page) => page.errors)).toEqual([]);
  }, 60_000);
});
