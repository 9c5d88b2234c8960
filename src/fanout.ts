import type { Shard } from "./table.js";
import { DELIVERED, FAILED, type Member, type Payload, write } from "./transports/index.js";
import type { TurnClock } from "./turn.js";

/** How many members are written between two looks at the clock. */
const SLICE_CHECK = 256;

/** One broadcast's fan-out: what to write, to whom not, where to count, what to do on trouble. */
export interface FanOut {
  readonly payload: Payload;
  readonly except: Member | undefined;
  readonly highWaterMark: number;
  readonly counts: { delivered: number; failed: number; dropped: number };
  /** A member was closed or its write threw. */
  readonly failed: (member: Member) => void;
  /** A member was over the high-water mark and got nothing. */
  readonly slow: (member: Member) => void;
  /** A `send` member's returned promise rejected after the fact. */
  readonly late: (member: Member) => void;
}

/**
 * Writes `job` to every member of `shard`, in slices: every SLICE_CHECK members it asks `clock`
 * whether the turn's budget is spent and, if so, yields. At the first yield it copies the rest of
 * the shard, so a member who leaves and joins again meanwhile cannot get the message twice.
 * @returns undefined when it finished without yielding, else a promise of the rest.
 */
export function writeShard(shard: Readonly<Shard<Member, unknown>>, job: FanOut, clock: TurnClock): Promise<void> | undefined {
  if (clock.spent()) return clock.nextTurn().then(() => writeShard(shard, job, clock));
  // next() by hand: the iterator outlives the loop when a slice ends, and V8 runs this shape fastest
  const members = shard.members.keys();
  let count = 0;
  for (let step = members.next(); !step.done; step = members.next()) {
    writeOne(step.value, job);
    if (++count % SLICE_CHECK === 0 && clock.spent()) return writeRest(shard, [...members], job, clock);
  }
  return undefined;
}

/**
 * The rest of a shard after a yield. The membership check (a hash lookup per member, so a cache
 * miss in a large shard) is made only while members have left this shard since the copy.
 */
async function writeRest(shard: Readonly<Shard<Member, unknown>>, rest: Member[], job: FanOut, clock: TurnClock): Promise<void> {
  const leaves = shard.leaves;
  let i = 0;
  while (i < rest.length) {
    await clock.nextTurn();
    const check = shard.leaves !== leaves;
    do {
      const member = rest[i++]!;
      if (!check || shard.members.has(member)) writeOne(member, job);
    } while (i < rest.length && (i % SLICE_CHECK !== 0 || !clock.spent()));
  }
}

function writeOne(member: Member, job: FanOut): void {
  if (member === job.except) return;
  const outcome = write(member, job.payload, job.highWaterMark, job.late);
  if (outcome === DELIVERED) {
    job.counts.delivered++;
  } else if (outcome === FAILED) {
    job.counts.failed++;
    job.failed(member);
  } else {
    job.counts.dropped++;
    job.slow(member);
  }
}
