/**
 * `npm run bench`: the library's own cost, each suite against its baseline in the same run.
 * `--quick`: small sizes and short runs, printed only (RESULTS.md is left alone).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Bench } from "tinybench";
import { Channels } from "ws-channels";
import { BareRooms, BareTable, CountingMember, TallyMember } from "./baseline.js";
import { fmt, machine, table, writeSection } from "./report.js";

const { values: flags } = parseArgs({
  options: { quick: { type: "boolean", default: false }, only: { type: "string" } },
});
const quick = flags.quick;
/** --only small-rooms,fan-out: run just those suites (printed only, RESULTS.md is left alone). */
const only = flags.only?.split(",").map((s) => s.trim());
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench does)");

const BATCH = 1000; // operations per timed iteration, so the timer's own cost is amortized
const CHANNELS = 10;
const benchTime = quick ? 30 : 500;
const progress = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const members = (n: number): CountingMember[] => Array.from({ length: n }, () => new CountingMember());

type Table = {
  join(c: string, m: object): unknown;
  leave(c: string, m: object): unknown;
  leaveAll(m: object): unknown;
  member(c: string, m: object): unknown;
};

/** Wraps a Channels in the same shape as BareTable (leave(member) is leave-all). */
function library(): Table {
  const channels = new Channels();
  return {
    join: (c, m) => channels.join(c, m as CountingMember),
    leave: (c, m) => channels.leave(c, m as CountingMember),
    leaveAll: (m) => channels.leave(m as CountingMember),
    member: (c, m) => channels.member(c, m as CountingMember),
  };
}

/** Mean time of one call of `fn` in ns, where `fn` does BATCH operations. */
async function perOp(name: string, fn: () => void, hooks: { beforeEach?: () => void; afterEach?: () => void } = {}): Promise<number> {
  const bench = new Bench({ time: benchTime, warmupTime: benchTime / 5 });
  bench.add(name, fn, hooks);
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== "completed") throw new Error(`${name}: ${result.state}`);
  return (result.latency.mean * 1e6) / BATCH;
}

async function membership(): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const size of quick ? [1000] : [1000, 100_000]) {
    const results: Record<string, number[]> = {};
    for (const [system, make] of [
      ["ws-channels", library],
      ["bare Map", () => new BareTable()],
    ] as const) {
      progress(`membership, ${system}, ${size} members`);
      const t: Table = make();
      for (const m of members(size)) for (let c = 0; c < CHANNELS; c++) t.join(`ch${c}`, m);
      const batch = members(BATCH);
      const join = await perOp(
        "join",
        () =>
          batch.forEach((m) => {
            t.join("ch0", m);
          }),
        {
          afterEach: () =>
            batch.forEach((m) => {
              t.leave("ch0", m);
            }),
        },
      );
      const member = await perOp(
        "member",
        () =>
          batch.forEach((m) => {
            t.member("ch0", m);
          }),
        {
          beforeEach: () =>
            batch.forEach((m) => {
              t.join("ch0", m);
            }),
          afterEach: () =>
            batch.forEach((m) => {
              t.leave("ch0", m);
            }),
        },
      );
      const leave = await perOp(
        "leave",
        () =>
          batch.forEach((m) => {
            t.leave("ch0", m);
          }),
        {
          beforeEach: () =>
            batch.forEach((m) => {
              t.join("ch0", m);
            }),
        },
      );
      const all = await perOp(
        "leave-all",
        () =>
          batch.forEach((m) => {
            t.leaveAll(m);
          }),
        {
          beforeEach: () =>
            batch.forEach((m) => {
              for (let c = 0; c < CHANNELS; c++) t.join(`ch${c}`, m);
            }),
        },
      );
      results[system] = [join, member, leave, all];
    }
    const ours = results["ws-channels"]!;
    const bare = results["bare Map"]!;
    ["join", "member", "leave", `leave-all (${CHANNELS} channels)`].forEach((op, i) => {
      rows.push([op, fmt(size), fmt(ours[i]!), fmt(bare[i]!), `${fmt(ours[i]! / bare[i]!)}x`]);
    });
  }
  return table(["operation", "members", "ws-channels ns/op", "bare Map ns/op", "ratio"], rows);
}

/**
 * One broadcast to one large channel, against two baselines over the same members: a `for` loop
 * over an array (which V8 can compile down to almost nothing) and a loop over a `Map` of the
 * members, as the channel's shard holds them. Every member counts the bytes it is handed.
 */
async function fanOut(): Promise<string> {
  const rows: (string | number)[][] = [];
  const message = JSON.stringify({ to: "room", say: "x".repeat(64) });
  for (const size of quick ? [1000] : [1000, 10_000, 100_000]) {
    const list = Array.from({ length: size }, () => new TallyMember());
    const map = new Map(list.map((m) => [m, undefined]));
    progress(`fan-out, bare loops, ${size} members`);
    const loop =
      (await perOp("array loop", () => {
        for (const m of list) m.send(message);
      })) *
      (BATCH / size);
    const mapLoop =
      (await perOp("Map loop", () => {
        for (const m of map.keys()) m.send(message);
      })) *
      (BATCH / size);
    for (const shards of quick ? [1, 16] : [1, 4, 16]) {
      progress(`fan-out, ws-channels, ${size} members, ${shards} shards`);
      const channels = new Channels({ sharder: () => shards });
      for (const m of list) channels.join("room", m);
      const bench = new Bench({ time: benchTime, warmupTime: benchTime / 5 });
      bench.add("broadcast", async () => void (await channels.broadcast("room", message)));
      await bench.run();
      const result = bench.tasks[0]!.result;
      if (result.state !== "completed") throw new Error(`broadcast: ${result.state}`);
      const ns = (result.latency.mean * 1e6) / size;
      rows.push([fmt(size), shards, fmt(1e9 / ns), fmt(ns), fmt(mapLoop), `${fmt(ns / mapLoop)}x`, fmt(loop), `${fmt(ns / loop)}x`]);
    }
  }
  return table(
    [
      "members",
      "shards",
      "ws-channels deliveries/s",
      "ws-channels ns/delivery",
      "Map loop ns/delivery",
      "ratio to Map loop",
      "array loop ns/delivery",
      "ratio to array loop",
    ],
    rows,
  );
}

/**
 * Many small rooms: 10,000 channels of N no-op members, broadcasts spread over them round robin,
 * BATCH per timed iteration and awaited together, against a bare `Map<channel, Set<member>>` and
 * a `for...of` loop calling `send`. Here the cost per broadcast, not per delivery, dominates.
 */
async function smallRooms(): Promise<string> {
  const rows: (string | number)[][] = [];
  const ROOMS = 10_000;
  const message = JSON.stringify({ to: "room", say: "x".repeat(64) });
  const names = Array.from({ length: ROOMS }, (_, i) => `room${i}`);
  for (const size of [1, 4, 10]) {
    const channels = new Channels();
    const bare = new BareRooms();
    for (const name of names) {
      for (let i = 0; i < size; i++) {
        const member = new CountingMember();
        channels.join(name, member);
        bare.join(name, member);
      }
    }
    gc!(); // the previous size's tables go now, not during this size's timing
    let next = 0;
    progress(`small rooms, bare Map+Set, ${fmt(ROOMS)} rooms of ${size}`);
    /** The next channel, round robin over all of them. */
    const room = (): string => {
      next = next + 1 === ROOMS ? 0 : next + 1;
      return names[next]!;
    };
    const bareNs = await perOp("bare rooms", () => {
      for (let i = 0; i < BATCH; i++) bare.broadcast(room(), message);
    });
    progress(`small rooms, ws-channels, ${fmt(ROOMS)} rooms of ${size}`);
    const pending: Promise<unknown>[] = new Array(BATCH);
    const bench = new Bench({ time: benchTime, warmupTime: benchTime / 5 });
    bench.add("broadcast", async () => {
      for (let i = 0; i < BATCH; i++) pending[i] = channels.broadcast(room(), message);
      await Promise.all(pending);
    });
    await bench.run();
    const result = bench.tasks[0]!.result;
    if (result.state !== "completed") throw new Error(`small rooms: ${result.state}`);
    const ns = (result.latency.mean * 1e6) / BATCH;
    rows.push([fmt(ROOMS), size, fmt(ns), fmt(ns / size), fmt(bareNs), `${fmt(ns / bareNs)}x`]);
  }
  return table(["channels", "members each", "ws-channels ns/broadcast", "ns/delivery", "bare Map+Set ns/broadcast", "ratio"], rows);
}

/** Heap bytes per membership once `fill` has built its table, after forced GCs. */
function heapPerMembership(fill: (list: CountingMember[]) => unknown, list: CountingMember[], memberships: number): number {
  gc!();
  gc!();
  const before = process.memoryUsage().heapUsed;
  const kept = fill(list);
  gc!();
  gc!();
  const after = process.memoryUsage().heapUsed;
  if (kept === undefined) throw new Error("unreachable: keeps the table alive until measured");
  return (after - before) / memberships;
}

function memory(): string {
  const count = quick ? 10_000 : 100_000;
  const memberships = count * CHANNELS;
  const list = members(count);
  const fill = (t: Table) => (l: CountingMember[]) => {
    for (const m of l) for (let c = 0; c < CHANNELS; c++) t.join(`ch${c}`, m);
    return t;
  };
  progress(`memory, ${fmt(memberships)} memberships`);
  const ours = heapPerMembership(fill(library()), list, memberships);
  const bare = heapPerMembership(fill(new BareTable()), list, memberships);
  return table(
    ["memberships", "ws-channels bytes/membership", "bare Map bytes/membership", "ratio"],
    [[fmt(memberships), fmt(ours), fmt(bare), `${fmt(ours / bare)}x`]],
  );
}

/** The longest gap between 1 ms timer ticks while one broadcast runs, and the broadcast's time. */
async function stall(channels: Channels, message: string): Promise<{ blockMs: number; totalMs: number }> {
  let last = performance.now();
  let worst = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  await sleep(20);
  worst = 0;
  const start = performance.now();
  await channels.broadcast("room", message);
  const totalMs = performance.now() - start;
  await sleep(20);
  clearInterval(probe);
  return { blockMs: Math.max(0, worst), totalMs };
}

/** A member whose send costs about 1 µs of CPU, as a socket write would: enough to need slices. */
class BusyMember {
  send(): void {
    const end = performance.now() + 0.001;
    while (performance.now() < end);
  }
}

async function eventLoop(): Promise<string> {
  const size = quick ? 10_000 : 100_000;
  const rows: (string | number)[][] = [];
  for (const [kind, make] of [
    ["no-op", () => new CountingMember()],
    ["1 µs send", () => new BusyMember()],
  ] as const) {
    const list = Array.from({ length: size }, make);
    for (const shards of [1, 16]) {
      const times: Record<string, number> = {};
      for (const [slicing, sliceMs] of [
        ["unsliced", Infinity],
        ["sliced (3 ms)", 3],
      ] as const) {
        progress(`event-loop stall, ${size} ${kind} members, ${shards} shards, ${slicing}`);
        const channels = new Channels({ sharder: () => shards, sliceMs });
        for (const m of list) channels.join("room", m as CountingMember);
        for (let i = 0; i < 2; i++) await channels.broadcast("room", "warm-up"); // untimed: JIT, first-run costs
        const runs: { blockMs: number; totalMs: number }[] = [];
        for (let i = 0; i < (quick ? 2 : kind === "no-op" ? 10 : 3); i++) runs.push(await stall(channels, "x".repeat(100)));
        const worst = Math.max(...runs.map((r) => r.blockMs));
        const total = runs.map((r) => r.totalMs).sort((a, b) => a - b)[runs.length >> 1]!;
        times[slicing] = total;
        const ratio = slicing === "unsliced" ? "1x" : `${fmt(total / times.unsliced!)}x`;
        rows.push([`${fmt(size)} ${kind}`, shards, slicing, fmt(worst), fmt(total), ratio]);
      }
    }
  }
  return table(
    ["members", "shards", "fan-out", "longest event-loop block, ms (worst of runs)", "broadcast time, ms (median)", "time vs unsliced"],
    rows,
  );
}

const SUITES: [id: string, title: string, run: () => string | Promise<string>][] = [
  ["membership", "Membership (ns per operation, lower is better)", membership],
  ["fan-out", "Fan-out, no I/O (each member counts the bytes it is handed)", fanOut],
  ["small-rooms", "Small rooms: 10,000 channels, broadcasts spread over them (`send` is a counter)", smallRooms],
  ["memory", "Memory (heap after forced GC)", memory],
  ["event-loop", "Event-loop stall during one broadcast", eventLoop],
];
const sections: [string, string][] = [];
for (const [id, title, run] of SUITES) if (only === undefined || only.includes(id)) sections.push([title, await run()]);

const markdown = [
  `## Library (\`npm run bench${quick ? " -- --quick" : ""}\`)`,
  "",
  machine(),
  ...sections.flatMap(([title, body]) => ["", `### ${title}`, "", body]),
].join("\n");
console.log(markdown);
if (!quick && only === undefined) writeSection("library", markdown);
