import { describe, expect, it } from "vitest";
import { WriterPool } from "../packages/ws-channels/src/writers.js";

/** A task that stays running until `release()` is called. */
function gate(): { task: () => Promise<void>; release: () => void; started: boolean } {
  let release = (): void => undefined;
  const g = {
    started: false,
    release: () => release(),
    task: () => {
      g.started = true;
      return new Promise<void>((resolve) => (release = resolve));
    },
  };
  return g;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("WriterPool", () => {
  it("grows from writers to maxWriters while tasks wait, then shrinks back when idle", async () => {
    const pool = new WriterPool(2, 4);
    const gates = Array.from({ length: 6 }, gate);
    const done = gates.map((g) => pool.run({}, g.task));
    await turn();
    expect(pool.size).toBe(4);
    expect(pool.active).toBe(4);
    expect(pool.pending).toBe(2);
    expect(gates.filter((g) => g.started)).toHaveLength(4);
    for (const g of gates) {
      g.release();
      await turn();
    }
    await Promise.all(done);
    expect(pool.active).toBe(0);
    expect(pool.size).toBe(2);
  });

  it("runs tasks of one queue one after another, in call order, while other queues proceed", async () => {
    const pool = new WriterPool(4, 4);
    const shard = {};
    const log: string[] = [];
    const first = gate();
    const a = pool.run(shard, async () => {
      log.push("a start");
      await first.task();
      log.push("a end");
    });
    const b = pool.run(shard, () => void log.push("b"));
    const other = pool.run({}, () => void log.push("other queue"));
    await turn();
    expect(log).toEqual(["a start", "other queue"]);
    first.release();
    await Promise.all([a, b, other]);
    expect(log).toEqual(["a start", "other queue", "a end", "b"]);
  });

  it("a task that throws rejects only its own promise; its queue goes on", async () => {
    const pool = new WriterPool(1, 1);
    const shard = {};
    const failing = pool.run(shard, () => {
      throw new Error("boom");
    });
    const next = pool.run(shard, () => "next ran");
    await expect(failing).rejects.toThrow("boom");
    await expect(next).resolves.toBe("next ran");
  });

  it("hands writers out round robin across queues: a short queue does not wait behind a long one", async () => {
    const pool = new WriterPool(1, 1);
    const log: string[] = [];
    const big = {};
    const small = {};
    const done = [1, 2, 3, 4].map((i) => pool.run(big, () => void log.push(`big ${i}`)));
    done.push(pool.run(small, () => void log.push("small")));
    await Promise.all(done);
    expect(log).toEqual(["big 1", "small", "big 2", "big 3", "big 4"]);
  });

  it("after() fires once every named queue has done its earlier tasks, and holds their later ones", async () => {
    const pool = new WriterPool(1, 1); // one writer: a barrier that held it would deadlock
    const [a, b] = [{}, {}];
    const log: string[] = [];
    const slow = gate();
    const first = pool.run(a, async () => {
      await slow.task();
      log.push("a1");
    });
    const second = pool.run(b, () => void log.push("b1"));
    pool.after([a, b, a], () => log.push("barrier"));
    const later = [pool.run(b, () => void log.push("b2")), pool.run(a, () => void log.push("a2"))];
    await turn();
    expect(log).toEqual([]); // a1 holds the only writer; b1 waits for it
    slow.release();
    await Promise.all([first, second, ...later]);
    expect(log.indexOf("barrier")).toBeGreaterThan(log.indexOf("a1"));
    expect(log.indexOf("barrier")).toBeGreaterThan(log.indexOf("b1"));
    expect(log.indexOf("barrier")).toBeLessThan(log.indexOf("a2"));
    expect(log.indexOf("barrier")).toBeLessThan(log.indexOf("b2"));
  });

  it("after() on idle queues fires at once, synchronously", () => {
    const pool = new WriterPool(2, 2);
    let fired = false;
    pool.after([{}, {}], () => (fired = true));
    expect(fired).toBe(true);
  });
});
