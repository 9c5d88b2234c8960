import type { Shard } from "./shards.js";
import { Bundle, DELIVERED, FAILED, type Member, type Payload, write, writeBundle } from "./transports/index.js";
import type { TurnClock } from "./turn.js";
import type { BroadcastResult } from "./types.js";

/** How many writes are made between two looks at the clock. */
export const SLICE_CHECK = 256;

/** One broadcast's part of a shard walk: what to write, to whom not, where to count. */
export interface FanOut {
  readonly payload: Payload;
  readonly except: Member | undefined;
  readonly counts: BroadcastResult;
}

/** What every write of one `Channels` shares: the slow-consumer mark and what to do on trouble. */
export interface WriteRules {
  readonly highWaterMark: number;
  /** A member was closed or its write threw, now or (a `send` member's promise) later. */
  readonly failed: (member: Member) => void;
  /** A member was over the high-water mark and got nothing. @returns whether it stays (skip policy). */
  readonly slow: (member: Member) => boolean;
}

/** One walk of a shard: its jobs, and for several, their messages bundled for one write each. */
interface Walk {
  readonly jobs: readonly FanOut[];
  /** The job, when there is only one. */
  readonly one: FanOut | undefined;
  /** The messages of every job, when there are several. */
  readonly bundle: Bundle | undefined;
  /** Members some job skips: they take the jobs one by one. */
  readonly excepts: readonly Member[];
}

/**
 * Writes `jobs` (the broadcasts queued on this shard, in call order) to every member of `shard`:
 * each member gets all of them in a row, so that a burst of broadcasts reaches a socket in one
 * slice. A socket member that every job is for gets them as one buffer of the frames (or bytes),
 * concatenated once for the whole shard: one write per member per batch. In slices: every
 * SLICE_CHECK writes it asks `clock` whether the turn's budget is spent and, if so, pauses until
 * the next turn and goes on with the same live iterator. A member who leaves before its turn is skipped (the iterator never reaches
 * a deleted entry); one who joins while the fan-out is paused, or leaves and joins again, is
 * recorded in `shard.joinedSince` and not written, so that nobody gets a message twice.
 * @returns undefined when it finished without pausing, else a promise of the rest.
 */
export function writeShard(
  shard: Shard<Member, unknown>,
  jobs: readonly FanOut[],
  clock: TurnClock,
  rules: WriteRules,
): Promise<void> | undefined {
  if (clock.spent()) return clock.nextTurn().then(() => writeShard(shard, jobs, clock, rules));
  const several = jobs.length > 1;
  const walk: Walk = {
    jobs,
    one: several ? undefined : jobs[0],
    bundle: several ? new Bundle(jobs.map((job) => job.payload)) : undefined,
    excepts: several ? jobs.flatMap((job) => (job.except === undefined ? [] : [job.except])) : [],
  };
  const members = shard.members.keys();
  return slice(members, walk, clock, undefined, rules) ? writePaused(shard, members, walk, clock, rules) : undefined;
}

/**
 * Writes one broadcast to every member of a small shard, at once, without looking at the clock:
 * the caller has checked that nothing is queued and that the shard is at most SLICE_CHECK members.
 * Takes the broadcast's parts as arguments, so that the common case allocates no job.
 */
export function writeNow(
  members: Map<Member, unknown>,
  payload: Payload,
  except: Member | undefined,
  counts: BroadcastResult,
  rules: WriteRules,
): void {
  for (const member of members.keys()) writeOne(member, payload, except, counts, rules);
}

/**
 * The rest of a shard, one slice per turn. Map iteration follows insertion order and whoever
 * joins while the fan-out is paused is appended, so the first of them the iterator meets marks the
 * end of the members it owes the message: it stops there, however much the shard churns meanwhile.
 */
async function writePaused(
  shard: Shard<Member, unknown>,
  members: Iterator<Member> & Iterable<Member>,
  walk: Walk,
  clock: TurnClock,
  rules: WriteRules,
): Promise<void> {
  const joined = new Set<Member>();
  shard.joinedSince = joined;
  try {
    do {
      await clock.nextTurn();
    } while (slice(members, walk, clock, joined, rules));
  } finally {
    shard.joinedSince = undefined;
  }
}

/**
 * Writes members from `members` until the turn's budget is spent, or until the first member of
 * `joined` (who joined during a pause: it and everyone after it are not owed the message).
 * @returns true if the budget ran out with members left to write.
 */
function slice(
  members: Iterable<Member>,
  walk: Walk,
  clock: TurnClock,
  joined: ReadonlySet<Member> | undefined,
  rules: WriteRules,
): boolean {
  const { one, jobs } = walk;
  // One broadcast per walk is the common case: its loop keeps the job's parts in registers.
  const step = one === undefined ? jobs.length : 1;
  let writes = 0;
  for (const member of members) {
    if (joined !== undefined && joined.size !== 0 && joined.has(member)) return false;
    if (one !== undefined) writeOne(member, one.payload, one.except, one.counts, rules);
    else writeBatch(member, walk, rules);
    writes += step;
    if (writes >= SLICE_CHECK) {
      writes = 0;
      if (clock.spent()) return true;
    }
  }
  return false;
}

/**
 * Every job of the walk to one member, in order: in one write of the bundled messages if the
 * member takes that (a socket no job skips, with room under the mark for the whole batch), else
 * one by one, each checked against the mark as ever.
 */
function writeBatch(member: Member, walk: Walk, rules: WriteRules): void {
  const { jobs, bundle } = walk;
  const outcome = bundle === undefined || walk.excepts.includes(member) ? undefined : writeBundle(member, bundle, rules.highWaterMark);
  if (outcome === DELIVERED) {
    for (let i = 0; i < jobs.length; i++) (jobs[i] as FanOut).counts.delivered++;
    return;
  }
  if (outcome === FAILED) {
    // As written one by one: the first message finds it failed, and it leaves before the others.
    (jobs[0] as FanOut).counts.failed++;
    rules.failed(member);
    return;
  }
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i] as FanOut;
    if (!writeOne(member, job.payload, job.except, job.counts, rules)) return; // it has left: the later jobs skip it
  }
}

/** @returns false if the member is gone: failed, or closed as a slow consumer. */
function writeOne(member: Member, payload: Payload, except: Member | undefined, counts: BroadcastResult, rules: WriteRules): boolean {
  if (member === except) return true;
  const outcome = write(member, payload, rules.highWaterMark, rules.failed);
  if (outcome === DELIVERED) {
    counts.delivered++;
    return true;
  }
  if (outcome === FAILED) {
    counts.failed++;
    rules.failed(member);
    return false;
  }
  counts.dropped++;
  return rules.slow(member);
}
