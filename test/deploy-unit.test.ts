import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { within } from "./helpers.js";
import { exited, killAll, spawnProject, waitFor } from "./processes.js";

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  killAll(children);
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const UNIT = new URL("../docs/ws-channels.service", import.meta.url);
const CLI = fileURLToPath(new URL("../packages/server/dist/cli.js", import.meta.url));
/** Whether this machine has systemd-analyze (Debian's `systemd` package); without it, the verify test is skipped. */
const HAS_SYSTEMD_ANALYZE = spawnSync("systemd-analyze", ["--version"]).status === 0;

/** The unit's `Key=value` lines of one section, in order (comments and blank lines left out). */
async function section(name: string): Promise<[string, string][]> {
  const text = await readFile(UNIT, "utf8");
  const body = text.split(/^\[/m).find((part) => part.startsWith(`${name}]`)) ?? "";
  return body
    .split("\n")
    .slice(1)
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]);
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ws-channels-unit-"));
  dirs.push(dir);
  return dir;
}

describe("the systemd unit (docs/ws-channels.service)", () => {
  it("is the unit docs/deploying.md shows, word for word", async () => {
    const page = await readFile(new URL("../docs/deploying.md", import.meta.url), "utf8");
    const shown = /```ini\n([\s\S]*?)```/.exec(page)?.[1];
    expect(shown).toBe(await readFile(UNIT, "utf8"));
  });

  it("has what a production start needs: restart on failure, its own user, SIGTERM, a stop timeout, the secret from a file", async () => {
    const service = new Map(await section("Service"));
    expect(service.get("Restart")).toBe("on-failure");
    expect(service.get("User")).toBe("ws-channels");
    expect(service.get("KillSignal")).toBe("SIGTERM");
    expect(Number(service.get("TimeoutStopSec"))).toBeGreaterThan(10); // the primary's own kill comes at 10 s
    expect(service.get("EnvironmentFile")).toBe("/etc/ws-channels/env");
    expect(service.get("ExecStart")).toMatch(/^\/opt\/ws-channels\/node_modules\/\.bin\/ws-channels /);
  });

  it.skipIf(!HAS_SYSTEMD_ANALYZE)(
    "passes systemd-analyze verify with no warning (its bin path pointed at this checkout's build)",
    async () => {
      // verify checks that ExecStart's program exists and is executable: here it is node running the built bin
      const text = (await readFile(UNIT, "utf8")).replace("/opt/ws-channels/node_modules/.bin/ws-channels", `${process.execPath} ${CLI}`);
      expect(text).toContain(`ExecStart=${process.execPath} ${CLI} `);
      const path = join(await tempDir(), "ws-channels.service");
      await writeFile(path, text);
      const verify = spawn("systemd-analyze", ["verify", path], { stdio: ["ignore", "pipe", "pipe"] });
      children.push(verify);
      let output = "";
      verify.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      verify.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      expect(await exited(verify, 30_000)).toEqual([0, null]);
      expect(output).toBe("");
      // and it can fail: a misspelt Restart= is reported
      await writeFile(path, text.replace("Restart=on-failure", "Restart=on-failur"));
      const bad = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8", timeout: 30_000 });
      expect(bad.stderr).toMatch(/restart specifier/);
    },
    40_000,
  );

  it("its ExecStart flags and EnvironmentFile start the server (on loopback, free ports); KillSignal stops it within TimeoutStopSec", async () => {
    const service = new Map(await section("Service"));
    const [, ...flags] = (service.get("ExecStart") as string).split(" ");
    // the same flags, with this test's loopback address and free ports
    const local = flags.map((value, i) =>
      flags[i - 1] === "--host" ? "127.0.0.1" : flags[i - 1] === "--port" || flags[i - 1] === "--admin-port" ? "0" : value,
    );
    expect(local).toContain("--workers");
    // an environment file as the docs write it, read as systemd reads KEY=VALUE lines
    const envFile = join(await tempDir(), "env");
    await writeFile(envFile, `WS_CHANNELS_JWT_SECRET=${"ab".repeat(32)}\n`);
    const env = Object.fromEntries(
      (await readFile(envFile, "utf8"))
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    const [key, value] = (service.get("Environment") as string).split("=") as [string, string];
    const started = spawnProject(children, process.execPath, [CLI, ...local], { ...env, [key]: value });
    const [, admin] = await waitFor(
      started,
      /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/,
      "the admin line",
      10_000,
    );
    await waitFor(started, /JWT connection tokens required \(HS256\)/, "the JWT line", 10_000);
    await waitFor(started, /WebSocket listening on ws:\/\/127\.0\.0\.1:\d+/, "the WebSocket line", 10_000);
    let ready = 0;
    // every worker listening: bounded polling of the primary's /readyz
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = (await within(fetch(`http://127.0.0.1:${admin}/readyz`), "/readyz")).status;
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(ready).toBe(200);
    // JSON lines, as --log-format json says
    for (const line of started
      .output()
      .split("\n")
      .filter((l) => l !== ""))
      expect(() => JSON.parse(line)).not.toThrow();
    started.child.kill(service.get("KillSignal") as NodeJS.Signals);
    expect(await exited(started.child, Number(service.get("TimeoutStopSec")) * 1000)).toEqual([0, null]);
  }, 60_000);
});
