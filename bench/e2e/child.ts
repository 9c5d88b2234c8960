/*
 * Child processes of the e2e benchmark: started with an IPC channel (and, where the soft
 * file-descriptor limit is too low for C sockets, through `sh -c "ulimit -n N; exec node ..."`),
 * asked questions with a timeout, and always killed: at the end of a run, on error, on SIGINT.
 */
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const live = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL: used on errors, timeouts and SIGINT). */
export function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
}

/** The soft and hard limits on open files, as `sh -c "ulimit -n"` reports them (Infinity for unlimited). */
export function fileLimits(): { soft: number; hard: number } {
  const read = (flag: string): number => {
    const value = execFileSync("sh", ["-c", `ulimit ${flag} -n`], { encoding: "utf8" }).trim();
    return value === "unlimited" ? Infinity : Number(value);
  };
  return { soft: read("-S"), hard: read("-H") };
}

/** A child process speaking JSON messages `Out` (each with a `type`) over IPC. */
export class Child<In, Out extends { type: string }> {
  private readonly process: ChildProcess;
  private readonly inbox: Out[] = [];
  private wake: (() => void) | undefined;
  private exit: string | undefined;

  /**
   * Starts `script` (a URL of a built .js file) with `execArgv`. With `fileLimit`, the child gets
   * that soft limit on open files through sh's ulimit (which fails if it is above the hard limit).
   * With `cpus` ("0", "0,1"), it and every process it forks run on those processors only (taskset).
   */
  constructor(script: URL, execArgv: string[], fileLimit?: number, cpus?: string) {
    const path = fileURLToPath(script);
    // stdout of the children goes to our stderr: our stdout is the results table only.
    const stdio: ["ignore", number, number, "ipc"] = ["ignore", 2, 2, "ipc"];
    const limit = fileLimit === undefined ? "" : `ulimit -n ${fileLimit} && `;
    const pin = cpus === undefined ? "" : `taskset -c ${cpus} `;
    this.process =
      limit === "" && pin === ""
        ? fork(path, [], { execArgv, stdio })
        : spawn("sh", ["-c", `${limit}exec ${pin}"$0" "$@"`, process.execPath, ...execArgv, path], { stdio });
    live.add(this.process);
    this.process.on("message", (message: Out) => {
      this.inbox.push(message);
      this.wake?.();
    });
    this.process.on("exit", (code, signal) => {
      live.delete(this.process);
      this.exit = `exited (${signal ?? `code ${code}`})`;
      this.wake?.();
    });
    this.process.on("error", (error) => {
      this.exit = error.message;
      this.wake?.();
    });
  }

  /** Sends a message (dropped if the child is gone: the next `next` reports why). */
  send(message: In): void {
    if (this.process.connected) this.process.send(message as object);
  }

  /**
   * Waits for the next message; rejects if it is a `failed` or `skipped` message (the reason as
   * the error, `skipped` marked by a "skipped: " prefix), if the child exits, or after `ms`.
   */
  async next<T extends Out["type"]>(type: T, ms: number): Promise<Extract<Out, { type: T }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const message = this.inbox.shift();
      if (message) {
        const reason = (message as { reason?: string }).reason;
        if (message.type === "skipped") throw new Error(`skipped: ${reason}`);
        if (message.type === "failed") throw new Error(reason);
        if (message.type === type) return message as Extract<Out, { type: T }>;
        continue; // a reply nobody waits for any more
      }
      if (this.exit) throw new Error(`child ${this.exit} while waiting for "${type}"`);
      if (Date.now() >= deadline) throw new Error(`no "${type}" within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Closes the IPC channel (the child exits by itself), then SIGKILLs it if still alive after `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once("exit", () => resolve()));
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => this.process.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
