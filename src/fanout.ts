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
 * whether the turn's budget is spent and, if so, pauses until the next turn and goes on with the
 * same live iterator. A member who leaves before its turn is skipped (the iterator never reaches
 * a deleted entry); one who joins while the fan-out is paused, or leaves and joins again, is
 * recorded in `shard.joinedSince` and skipped too, so that nobody gets the message twice.
 * @returns undefined when it finished without pausing, else a promise of the rest.
 */
export function writeShard(shard: Shard<Member, unknown>, job: FanOut, clock: TurnClock): Promise<void> | undefined {
  if (clock.spent()) return clock.nextTurn().then(() => writeShard(shard, job, clock));
  const members = shard.members.keys();
  let count = 0;
  for (const member of members) {
    writeOne(member, job);
    if (++count % SLICE_CHECK === 0 && clock.spent()) return writePaused(shard, members, job, clock);
  }
  return undefined;
}

/** The rest of a shard, one slice per turn, skipping whoever joined it meanwhile. */
async function writePaused(shard: Shard<Member, unknown>, members: Iterator<Member> & Iterable<Member>, job: FanOut, clock: TurnClock): Promise<void> {
  const joined = (shard.joinedSince = new Set());
  try {
    await clock.nextTurn();
    let count = 0;
    for (const member of members) {
      if (joined.size === 0 || !joined.has(member)) writeOne(member, job);
      if (++count % SLICE_CHECK === 0 && clock.spent()) await clock.nextTurn();
    }
  } finally {
    shard.joinedSince = undefined;
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
