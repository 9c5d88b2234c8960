import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";

/** Runs `script` as an ES module in a fresh Node process (with `flags`) at the repository's root. @returns what it printed, parsed as JSON. */
function run(script: string, flags: string[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...flags, "--input-type=module", "-e", script],
      { cwd: new URL("../..", import.meta.url), timeout: 10_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout))),
    );
  });
}

/** Imports `specifier` in a fresh Node process and lists the CommonJS modules it loaded whose path mentions `ioredis`. */
function ioredisLoadedBy(specifier: string): Promise<unknown> {
  return run(`
    await import(${JSON.stringify(specifier)});
    const { createRequire } = await import("node:module");
    const cache = createRequire(import.meta.url).cache;
    console.log(JSON.stringify(Object.keys(cache).filter((path) => path.includes("/node_modules/ioredis/"))));
  `);
}

describe("entry points", () => {
  it("importing ws-channels (and ws-channels/cluster) does not load ioredis; ws-channels/redis does", async () => {
    expect(await ioredisLoadedBy("ws-channels")).toEqual([]);
    expect(await ioredisLoadedBy("ws-channels/cluster")).toEqual([]);
    expect(((await ioredisLoadedBy("ws-channels/redis")) as string[]).length).toBeGreaterThan(0);
  });

  it("ws-channels/redis leaves String.prototype with fast properties, which loading ioredis alone does not", async () => {
    // %HasFastProperties is V8's own test: a prototype in dictionary mode makes optimized code look up every string method
    const fast = "%HasFastProperties(String.prototype)";
    const script = `await import("ioredis"); const alone = ${fast}; await import("ws-channels/redis"); console.log(JSON.stringify([alone, ${fast}]));`;
    expect(await run(script, ["--allow-natives-syntax"])).toEqual([false, true]);
  });
});
