import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** One file the page listener answers with: its bytes and their media type. */
export interface PageFile {
  readonly body: Buffer;
  readonly type: string;
}

/** What the page shows beyond chat: read by the page from `/page/config.json`. */
export interface PageConfig {
  /** Whether the server keeps history, so that the page joins with `recover` and shows what was replayed. */
  readonly history: boolean;
  /** The demo ticker's channel, or null without `--demo`. */
  readonly ticker: string | null;
}

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
};

/** The page's sources, next to this package's `src/` and `dist/` (and shipped in its `files`). */
const PAGE_DIR = fileURLToPath(new URL("../../page/", import.meta.url));

/**
 * Reads every file the page needs into memory, keyed by the URL path it is served at: `/` (the
 * page's index.html), `/page/*` (the rest of packages/server/page), `/page/config.json` (made
 * from `config`), and the client library's built ES modules, `/client.js` (`ws-channels/client`)
 * and `/client/*.js` (what it imports), so that the browser imports the client with no bundler.
 * Only these paths exist: nothing is read from disk per request.
 * @throws {Error} saying the page cannot be served when `ws-channels/client` cannot be resolved
 *   or read (a library built without it), or when the page's sources are missing.
 */
export async function loadPage(config: PageConfig): Promise<Map<string, PageFile>> {
  const files = new Map<string, PageFile>();
  try {
    for (const path of await listFiles(PAGE_DIR)) {
      const url = path === "index.html" ? "/" : `/page/${path}`;
      files.set(url, await fileAt(join(PAGE_DIR, path)));
    }
    // the client's entry and the modules beside it, as its package exports them to any user
    const entry = fileURLToPath(import.meta.resolve("ws-channels/client"));
    files.set("/client.js", await fileAt(entry));
    const modules = join(dirname(entry), "client");
    for (const path of await listFiles(modules)) if (path.endsWith(".js")) files.set(`/client/${path}`, await fileAt(join(modules, path)));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot serve the page (--no-page turns it off): ${reason}`);
  }
  files.set("/page/config.json", { body: Buffer.from(JSON.stringify(config)), type: TYPES[".json"] as string });
  return files;
}

async function fileAt(path: string): Promise<PageFile> {
  const extension = path.slice(path.lastIndexOf("."));
  return { body: await readFile(path), type: TYPES[extension] ?? "application/octet-stream" };
}

/** Every file under `dir`, as paths relative to it with `/` separators. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join("/"))
    .sort();
}
