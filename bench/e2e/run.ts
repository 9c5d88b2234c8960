/*
 * One end-to-end run: a fresh server process and a fresh load-generator process, C clients, M
 * messages. The sequence: server ready -> clients connected -> every client in the room ->
 * begin (server starts counting CPU and event-loop blocks) -> burst -> end -> both processes stopped.
 */
import type { FromPeer, ToPeer } from "../peers/harness.js";
import { Child } from "./child.js";
import type { Burst, FromLoadgen, ToLoadgen } from "./protocol.js";

/** A system under test: a peer file in bench/peers/ and whether its clients speak socket.io. */
export interface System {
  name: string;
  peer: string; // file name in build/bench/peers/
  socketIo: boolean;
}

/** What a run needs besides the system. */
export interface RunPlan {
  clients: number;
  messages: number;
  window: number;
  burst: number; // messages the publisher sends together, in one turn and one write
  roomSize: number | undefined; // many rooms of this size, published to by the server on a control client's trigger
  rate: number | undefined; // fixed rate, messages per second, instead of the window
  timeoutMs: number; // the whole run, connect phase included
  fileLimit: number | undefined; // start the children with this soft limit on open files
}

/** The measurements of one completed run. */
export interface Measured {
  burst: Burst;
  serverCpuUs: number;
  rssPerConnectionKB: number;
  heapPerConnectionKB: number;
  maxBlockMs: number;
}

/** A run's outcome: measured, skipped (the system cannot run here), or failed (with why). */
export type Outcome = { ok: true; value: Measured } | { ok: false; skipped: boolean; reason: string };

const PEERS = new URL("../peers/", import.meta.url);
/** Extra Node flags for every server process, e.g. E2E_PEER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const PEER_ARGS = (process.env.E2E_PEER_ARGS ?? "").split(" ").filter((arg) => arg !== "");
/**
 * Processors for every server process (and the workers it forks) and for the load generator,
 * e.g. E2E_PEER_CPUS=0 E2E_LOADGEN_CPUS=1: one process and two workers then get the same core.
 */
const PEER_CPUS = process.env.E2E_PEER_CPUS || undefined;
const LOADGEN_CPUS = process.env.E2E_LOADGEN_CPUS || undefined;
const LOADGEN = new URL("./loadgen.js", import.meta.url);

/** Runs `system` once with `plan`; never throws, and leaves no child process behind. */
export async function runOnce(system: System, plan: RunPlan): Promise<Outcome> {
  const server = new Child<ToPeer, FromPeer>(new URL(system.peer, PEERS), ["--expose-gc", ...PEER_ARGS], plan.fileLimit, PEER_CPUS);
  let loadgen: Child<ToLoadgen, FromLoadgen> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const deadline = Date.now() + plan.timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());

  const steps = async (): Promise<Measured> => {
    const ready = await server.next("ready", Math.min(left(), 20_000));
    loadgen = new Child<ToLoadgen, FromLoadgen>(LOADGEN, [], plan.fileLimit, LOADGEN_CPUS);
    loadgen.send({
      type: "connect",
      port: ready.port,
      clients: plan.clients,
      socketIo: system.socketIo,
      concurrency: 200,
      timeoutMs: 60_000,
      ...(plan.roomSize === undefined ? {} : { roomSize: plan.roomSize }),
    });
    await loadgen.next("connected", left());
    // A client may see its handshake done a moment before the server has it in the room.
    for (let tries = 0; ; tries++) {
      server.send({ type: "members" });
      const { count } = await server.next("members", left());
      if (count === plan.clients) break;
      if (tries === 100) throw new Error(`${count} of ${plan.clients} clients in the room`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    server.send({ type: "begin" });
    const begun = await server.next("begun", left());
    loadgen.send({
      type: "run",
      messages: plan.messages,
      window: plan.window,
      burst: plan.burst,
      stallMs: 5_000,
      maxMs: left(),
      ...(plan.rate === undefined ? {} : { rate: plan.rate }),
    });
    const { burst } = await loadgen.next("done", left());
    server.send({ type: "end" });
    const ended = await server.next("ended", left());
    // Reset every client before the server goes, so neither side keeps TIME_WAIT ports.
    loadgen.send({ type: "close" });
    await loadgen.next("closed", left());
    closed = true;
    return {
      burst,
      serverCpuUs: ended.cpuUs,
      rssPerConnectionKB: (begun.rss - ready.rss) / plan.clients / 1024,
      heapPerConnectionKB: (begun.heap - ready.heap) / plan.clients / 1024,
      maxBlockMs: ended.maxBlockMs,
    };
  };

  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${plan.timeoutMs / 1000} s`)), plan.timeoutMs);
    });
    return { ok: true, value: await Promise.race([steps(), timeout]) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const skipped = reason.startsWith("skipped: ");
    return { ok: false, skipped, reason: skipped ? reason.slice("skipped: ".length) : reason };
  } finally {
    clearTimeout(timer);
    if (!closed) loadgen?.send({ type: "close" }); // no TIME_WAIT ports on failure either
    await Promise.all([loadgen?.stop(), server.stop()]);
  }
}
