import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";

/** Imports `specifier` in a fresh Node process and lists the CommonJS modules it loaded whose path mentions `ioredis`. */
function ioredisLoadedBy(specifier: string): Promise<string[]> {
  const script = `
    await import(${JSON.stringify(specifier)});
    const { createRequire } = await import("node:module");
    const cache = createRequire(import.meta.url).cache;
    console.log(JSON.stringify(Object.keys(cache).filter((path) => path.includes("/node_modules/ioredis/"))));
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", script],
      { cwd: new URL("../..", import.meta.url), timeout: 10_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as string[])),
    );
  });
}

describe("entry points", () => {
  it("importing ws-channels (and ws-channels/cluster) does not load ioredis; ws-channels/redis does", async () => {
    expect(await ioredisLoadedBy("ws-channels")).toEqual([]);
    expect(await ioredisLoadedBy("ws-channels/cluster")).toEqual([]);
    expect((await ioredisLoadedBy("ws-channels/redis")).length).toBeGreaterThan(0);
  });
});
