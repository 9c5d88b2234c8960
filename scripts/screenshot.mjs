// `npm run screenshot`: docs/page.png, two pages of the server's page side by side (README's
// picture), taken in Debian's chromium (CHROMIUM names another) through playwright-core.
import { writeFile } from "node:fs/promises";
import { startServer } from "@ws-channels/server";
import { chromium } from "playwright-core";

const OUT = new URL("../docs/page.png", import.meta.url);
const WAIT = { timeout: 10_000 };

const server = await startServer({ port: 0, tcpPort: false, demo: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const base = `http://127.0.0.1:${server.ws.port}`;
  const open = async (name) => {
    const page = await browser.newPage({ viewport: { width: 620, height: 460 } });
    await page.goto(`${base}/?name=${name}&channel=lobby`);
    await page.waitForSelector('[data-testid="messages"][data-joined]', { state: "attached", ...WAIT });
    return page;
  };
  const say = async (page, text) => {
    await page.fill('[data-testid="message"]', text);
    await page.click('[data-testid="send"]');
  };
  const ann = await open("ann");
  const bob = await open("bob");
  await say(ann, "hi bob, try the drop button");
  await say(bob, "dropped: back in half a second");
  await ann.waitForFunction(() => document.querySelectorAll('[data-testid="messages"] > li').length === 2, null, WAIT);
  await bob.waitForFunction(() => document.querySelectorAll('[data-testid="ticker"] > li').length >= 12, null, WAIT);
  await ann.waitForFunction(() => document.querySelectorAll('[data-testid="ticker"] > li').length >= 12, null, WAIT);
  const shots = [await ann.screenshot(), await bob.screenshot()];
  const both = await browser.newPage({ viewport: { width: 1248, height: 460 } });
  const images = shots.map((png) => `<img src="data:image/png;base64,${png.toString("base64")}">`).join("");
  await both.setContent(`<body style="margin:0;display:flex;gap:8px;background:#9aa3ad">${images}</body>`);
  await writeFile(OUT, await both.screenshot());
  console.log(`wrote ${OUT.pathname}`);
} finally {
  await browser.close();
  await server.close();
}
