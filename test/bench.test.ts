import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

/** Runs an npm script to completion; resolves with its exit code and output, table cells unpadded (`| a | b |`). */
function npm(args: string[], ms: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", args, { cwd: new URL("..", import.meta.url), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`npm ${args.join(" ")} took over ${ms} ms:\n${out}`));
    }, ms);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out: out.replace(/ +\|/g, " |").replace(/\| +/g, "| ") });
    });
  });
}

// The benchmarks must keep running; their numbers are reported, never asserted.
describe("benchmarks, --quick", () => {
  it("npm run bench -- --quick prints every suite's table", async () => {
    const { code, out } = await npm(["run", "bench", "--", "--quick"], 120_000);
    expect(code, out).toBe(0);
    for (const suite of ["### Membership", "### Fan-out", "### Small rooms", "### Memory", "### Event-loop stall"])
      expect(out).toContain(suite);
    expect(out).toMatch(/\| join \| 1,000 \| [\d.,]+ \| [\d.,]+ \| [\d.]+x \|/);
    for (const size of [1, 4, 10])
      expect(out).toMatch(new RegExp(`\\| 10,000 \\| ${size} \\| [\\d.,]+ \\| [\\d.,]+ \\| [\\d.,]+ \\| [\\d.]+x \\|`));
  }, 130_000);

  it("npm run bench:brokers -- --quick measures ws-channels, the RESP floor and socket.io's Redis adapter on a real redis-server", async () => {
    const { code, out } = await npm(["run", "bench:brokers", "--", "--quick"], 120_000);
    expect(code, out).toBe(0);
    expect(out).toContain("### Broker throughput");
    // each system's row: CPU per cross-node broadcast, its ratio to the floor, then broadcasts per second
    for (const system of ["ws-channels", "floor", "socket.io"])
      expect(out).toMatch(new RegExp(`\\| ${system} \\| [\\d.,]+ µs \\| [\\d.,]+x \\| [\\d.]+% \\| [\\d,]+ \\| [\\d.,]+x \\|`));
    expect(out).toMatch(/\| ws-channels( \| [^|]+){6} \| 0 \| 0 \|/); // nothing lost, nothing unpublished
  }, 130_000);

  it("npm run bench:platform -- --quick measures presence and history on one process, two workers and two Redis servers", async () => {
    const { code, out } = await npm(["run", "bench:platform", "--", "--quick"], 240_000);
    expect(code, out).toBe(0);
    const number = "[\\d.,]+";
    for (const server of ["one process", "two workers"]) {
      expect(out).toMatch(new RegExp(`\\| ${server} \\| ${number} \\| ${number} \\| ${number} \\| ${number} \\|`)); // herd
      expect(out).toMatch(new RegExp(`\\| ${server} \\| ${number} \\| -?${number} \\| -?${number} \\|`)); // churn
    }
    for (const backend of ["one process", "two workers", "two servers on Redis"]) {
      for (const history of ["off", "--history-size 100"])
        expect(out).toMatch(new RegExp(`\\| ${backend} \\| ${history} \\| ${number} \\| ${number} \\| ${number} \\|`));
      expect(out).toMatch(new RegExp(`\\| ${backend} \\| ${number} \\| ${number} \\| (${number}|-) \\|`)); // recovery
    }
  }, 250_000);

  it("npm run bench:e2e -- --quick runs every scenario and system against a real server and load generator", async () => {
    const { code, out } = await npm(["run", "bench:e2e", "--", "--quick"], 480_000);
    expect(code, out).toBe(0);
    const sections = out.split(/^### /m).slice(1);
    const expected: [string, string[]][] = [
      ["Steady", ["ws-channels", "naive ws", "socket.io", "uWebSockets.js", "floor", "ws-channels 2 workers", "ws-channels 2 Redis nodes"]],
      ["Bursty", ["ws-channels", "naive ws", "socket.io", "uWebSockets.js", "floor", "ws-channels 2 workers", "ws-channels 2 Redis nodes"]],
      ["Rooms-4", ["ws-channels", "naive ws", "uWebSockets.js", "floor"]],
      ["Rooms-10", ["ws-channels", "naive ws", "uWebSockets.js", "floor"]],
      ["Latency", ["ws-channels", "naive ws", "uWebSockets.js", "floor"]],
    ];
    expect(sections.map((section) => section.split(":")[0])).toEqual(expected.map(([name]) => name));
    for (const [i, [, systems]] of expected.entries()) {
      // Each system's row: measured (a number of deliveries/s), with 0 lost and 0 out of order.
      for (const system of systems)
        expect(sections[i]).toMatch(new RegExp(`\\| ${system} \\| 1,000 \\| [\\d,]+ \\| [\\d,.]+ \\|(?: [\\d.,]+ \\|){3} 0 \\| 0 \\|`));
    }
    expect(out).not.toMatch(/\| (failed|timed out)/);
  }, 490_000);
});
