import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "../helpers.js";

/**
 * A real redis-server (Debian's) for one test file, on a unix socket in a temporary folder, with
 * no persistence unless `persistent`. `kill()` and `start()` again keep the same address.
 */
export class RedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), "ws-channels-redis-"));
  /** The socket path: what RedisBroker's `url` and ioredis take. */
  readonly path = join(this.dir, "redis.sock");
  readonly #persistence: string[];
  #child: ChildProcess | undefined;

  /**
   * @param persistent keep every write in an append-only file in the folder, synced before Redis
   *   answers it or publishes what it published (`appendfsync always`): a SIGKILL loses nothing
   *   any client saw, and `start()` again loads it.
   */
  constructor({ persistent = false }: { persistent?: boolean } = {}) {
    this.#persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  }

  /** Starts the server and waits until it accepts connections. */
  async start(): Promise<void> {
    const child = spawn(
      "redis-server",
      ["--port", "0", "--unixsocket", this.path, "--unixsocketperm", "700", "--save", "", ...this.#persistence, "--dir", this.dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    let output = "";
    const ready = within(
      new Promise<void>((resolve, reject) => {
        child.on("error", reject);
        child.on("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
        child.stdout?.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          if (/ready to accept connections/i.test(output)) resolve();
        });
      }),
      "redis-server to accept connections",
    );
    // a server that never says it is ready is killed, not left behind
    await ready.catch(async (error: unknown) => {
      await this.kill();
      throw error;
    });
  }

  /** Kills the server at once (SIGKILL) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await within(exited, "redis-server to exit");
  }

  /** Stops the server without closing anything (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** Lets a paused server go on (SIGCONT). */
  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  /** Kills the server and removes its folder. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
