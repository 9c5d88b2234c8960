import type { Shard } from "./table.js";
import { DELIVERED, FAILED, type Member, type Payload, write } from "./transports/index.js";
import type { TurnClock } from "./turn.js";

/** How many writes are made between two looks at the clock. */
const SLICE_CHECK = 256;

/** One broadcast's fan-out: what to write, to whom not, where to count, what to do on trouble. */
export interface FanOut {
  readonly payload: Payload;
  readonly except: Member | undefined;
  readonly highWaterMark: number;
  readonly counts: { delivered: number; failed: number; dropped: number };
  /** A member was closed or its write threw, now or (a `send` member's promise) later. */
  readonly failed: (member: Member) => void;
  /** A member was over the high-water mark and got nothing. @returns whether it stays (skip policy). */
  readonly slow: (member: Member) => boolean;
}

/**
 * Writes `jobs` (the broadcasts queued on this shard, in call order) to every member of `shard`:
 * each member gets all of them in a row, so that a burst of broadcasts reaches a socket in one
 * slice and leaves it in one `writev`. In slices: every SLICE_CHECK writes it asks `clock`
 * whether the turn's budget is spent and, if so, pauses until the next turn and goes on with the
 * same live iterator. A member who leaves before its turn is skipped (the iterator never reaches
 * a deleted entry); one who joins while the fan-out is paused, or leaves and joins again, is
 * recorded in `shard.joinedSince` and not written, so that nobody gets a message twice.
 * @returns undefined when it finished without pausing, else a promise of the rest.
 */
export function writeShard(shard: Shard<Member, unknown>, jobs: readonly FanOut[], clock: TurnClock): Promise<void> | undefined {
  if (clock.spent()) return clock.nextTurn().then(() => writeShard(shard, jobs, clock));
  const members = shard.members.keys();
  return slice(members, jobs, clock, undefined) ? writePaused(shard, members, jobs, clock) : undefined;
}

/**
 * The rest of a shard, one slice per turn. Map iteration follows insertion order and whoever
 * joins while the fan-out is paused is appended, so the first of them the iterator meets marks the
 * end of the members it owes the message: it stops there, however much the shard churns meanwhile.
 */
async function writePaused(
  shard: Shard<Member, unknown>,
  members: Iterator<Member> & Iterable<Member>,
  jobs: readonly FanOut[],
  clock: TurnClock,
): Promise<void> {
  const joined = new Set<Member>();
  shard.joinedSince = joined;
  try {
    do {
      await clock.nextTurn();
    } while (slice(members, jobs, clock, joined));
  } finally {
    shard.joinedSince = undefined;
  }
}

/**
 * Writes members from `members` until the turn's budget is spent, or until the first member of
 * `joined` (who joined during a pause: it and everyone after it are not owed the message).
 * @returns true if the budget ran out with members left to write.
 */
function slice(members: Iterable<Member>, jobs: readonly FanOut[], clock: TurnClock, joined: ReadonlySet<Member> | undefined): boolean {
  let writes = 0;
  for (const member of members) {
    if (joined !== undefined && joined.size !== 0 && joined.has(member)) return false;
    writeAll(member, jobs);
    writes += jobs.length;
    if (writes >= SLICE_CHECK) {
      writes = 0;
      if (clock.spent()) return true;
    }
  }
  return false;
}

/** Every job to one member, in order; after a failure it has left, so the later jobs skip it. */
function writeAll(member: Member, jobs: readonly FanOut[]): void {
  for (let i = 0; i < jobs.length; i++) if (!writeOne(member, jobs[i] as FanOut)) return;
}

/** @returns false if the member is gone: failed, or closed as a slow consumer. */
function writeOne(member: Member, job: FanOut): boolean {
  if (member === job.except) return true;
  const outcome = write(member, job.payload, job.highWaterMark, job.failed);
  if (outcome === DELIVERED) {
    job.counts.delivered++;
    return true;
  }
  if (outcome === FAILED) {
    job.counts.failed++;
    job.failed(member);
    return false;
  }
  job.counts.dropped++;
  return job.slow(member);
}
