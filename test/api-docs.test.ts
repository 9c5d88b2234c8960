import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, spawnProject, waitFor } from "./processes.js";

const run = promisify(execFile);
const children: ChildProcess[] = [];
let dir = "";
afterAll(async () => {
  killAll(children);
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

/** The shell blocks of docs/server.md's "Server API" section, in order. */
async function shellBlocks(): Promise<string[]> {
  const page = await readFile(new URL("../docs/server.md", import.meta.url), "utf8");
  const section = page.slice(page.indexOf("## Server API"), page.indexOf("## In your own process"));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

describe("docs/server.md's Server API section", () => {
  it("the curl examples of docs/server.md answer what their comments say, on the server the section starts", async () => {
    const [start, calls] = (await shellBlocks()) as [string, string];
    dir = await mkdtemp(join(tmpdir(), "ws-channels-api-docs-"));
    const [makeKey, serve] = start.split("\n").map((line) => line.replace(/\s+#.*$/, "")) as [string, string];
    await run("sh", ["-c", makeKey], { cwd: dir });
    // the block's command and flags, on the build `npx ws-channels` runs, with free ports
    const flags = serve
      .replace(/^npx ws-channels /, "")
      .replace("--api-port 4600", "--api-port 0")
      .split(" ");
    const cli = new URL("../packages/server/dist/cli.js", import.meta.url).pathname;
    const server = spawnProject(children, "sh", [
      "-c",
      `cd '${dir}' && exec '${process.execPath}' '${cli}' --port 0 --tcp-port 0 ${flags.join(" ")}`,
    ]);
    const port = (await waitFor(server, /API listening on http:\/\/127\.0\.0\.1:(\d+)/, "the API line", 10_000))[1] as string;
    // each curl's body on a line of its own, then compared with the comment under it ("..." is anything)
    const lines = calls.trimEnd().split("\n");
    const script = lines
      .filter((l) => !l.startsWith("#"))
      .map((l) => (l.startsWith("curl") ? `${l}; echo` : l))
      .join("\n");
    const { stdout } = await run("sh", ["-c", script.replace("127.0.0.1:4600", `127.0.0.1:${port}`)], { cwd: dir });
    const answers = stdout.trimEnd().split("\n");
    const expected = lines.filter((l) => l.startsWith("# ")).map((l) => l.slice(2));
    expect(answers).toHaveLength(expected.length + 1);
    expected.forEach((shown, i) => {
      const pattern = new RegExp(`^${shown.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replaceAll("\\.\\.\\.", ".*")}$`);
      expect(answers[i]).toMatch(pattern);
    });
    expect(JSON.parse(answers.at(-1) as string)).toMatchObject({ openapi: "3.1.0" });
  }, 30_000);
});
