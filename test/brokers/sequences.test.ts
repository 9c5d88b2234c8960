import { describe, expect, it } from "vitest";
import { MAX_SEQUENCES, Sequences } from "../../packages/ws-channels/src/brokers/sequences.js";

describe("a node's outgoing sequences", () => {
  it("lends a channel's sequence to its record (take) and takes it back where the record left it (keep)", () => {
    const sequences = new Sequences();
    const room = sequences.of("room");
    expect(sequences.next(room)).toBe(1);
    const taken = sequences.take("room");
    expect(taken).toBe(room); // the same epoch and seq go on in the record
    expect(sequences.take("room").epoch).not.toBe(room.epoch); // taken out: a second take starts anew
    sequences.keep("room", room.epoch, 41);
    expect(sequences.of("room")).toMatchObject({ epoch: room.epoch, seq: 41 });
    expect(sequences.next(sequences.of("room"))).toBe(42);
  });

  it("gives every new sequence an epoch of its own, never 0 (a record's 'none yet')", () => {
    const sequences = new Sequences();
    const epochs = new Set<number>();
    for (let i = 0; i < 1000; i++) epochs.add((i % 2 === 0 ? sequences.of(`c${i}`) : sequences.take(`c${i}`)).epoch);
    expect(epochs.size).toBe(1000);
    expect(epochs.has(0)).toBe(false);
  });

  it(`counts a channel kept again as used: past ${MAX_SEQUENCES} it outlives those broadcast to before it`, () => {
    const sequences = new Sequences();
    sequences.next(sequences.of("early"));
    const left = sequences.take("left"); // a live channel's record holds it
    for (let i = 0; i < MAX_SEQUENCES - 10; i++) sequences.next(sequences.of(`other-${i}`));
    sequences.keep("left", left.epoch, 3); // its last local member leaves, late
    for (let i = 0; i < 20; i++) sequences.next(sequences.of(`later-${i}`)); // past the bound: the oldest quarter goes
    expect(sequences.of("left")).toMatchObject({ epoch: left.epoch, seq: 3 });
    expect(sequences.of("early").seq).toBe(0); // forgotten: a new sequence
  });
});
