/**
 * The library's baseline: membership in a bare `Map<channel, Map<member, meta>>` with a bare
 * reverse `Map<member, Set<channel>>`, no sharding and no argument checks. Whatever ws-channels
 * costs on top of this is its own overhead.
 */
export class BareTable {
  readonly channels = new Map<string | number, Map<object, unknown>>();
  readonly reverse = new Map<object, Set<string | number>>();

  join(channel: string | number, member: object, meta?: unknown): boolean {
    let members = this.channels.get(channel);
    if (members === undefined) {
      members = new Map();
      this.channels.set(channel, members);
    }
    if (members.has(member)) return false;
    members.set(member, meta);
    let joined = this.reverse.get(member);
    if (joined === undefined) {
      joined = new Set();
      this.reverse.set(member, joined);
    }
    joined.add(channel);
    return true;
  }

  leave(channel: string | number, member: object): boolean {
    const members = this.channels.get(channel);
    if (members === undefined || !members.delete(member)) return false;
    if (members.size === 0) this.channels.delete(channel);
    const joined = this.reverse.get(member)!;
    joined.delete(channel);
    if (joined.size === 0) this.reverse.delete(member);
    return true;
  }

  leaveAll(member: object): number {
    const joined = this.reverse.get(member);
    if (joined === undefined) return 0;
    for (const channel of joined) {
      const members = this.channels.get(channel)!;
      members.delete(member);
      if (members.size === 0) this.channels.delete(channel);
    }
    this.reverse.delete(member);
    return joined.size;
  }

  member(channel: string | number, member: object): boolean {
    return this.channels.get(channel)?.has(member) ?? false;
  }
}

/** A member whose `send` only counts: fan-out with no I/O. */
export class CountingMember {
  static sent = 0;
  send(_data: string | Uint8Array): void {
    CountingMember.sent++;
  }
}

/**
 * A member whose `send` does a little work of its own, in the member, that no compiler can drop:
 * it counts the bytes it was handed, as a socket counts what it buffers. Fan-out baselines call
 * it through the same `Map` iteration a broadcast does, so they measure the same work.
 */
export class TallyMember {
  bytes = 0;
  send(data: string | Uint8Array): void {
    this.bytes += data.length;
  }
}

/** Broadcasts the way a user without the library would: a `Set` per channel and a loop. */
export class BareRooms {
  readonly rooms = new Map<string, Set<{ send(data: string): void }>>();

  join(channel: string, member: { send(data: string): void }): void {
    let room = this.rooms.get(channel);
    if (room === undefined) {
      room = new Set();
      this.rooms.set(channel, room);
    }
    room.add(member);
  }

  broadcast(channel: string, message: string): number {
    const room = this.rooms.get(channel);
    if (room === undefined) return 0;
    for (const member of room) member.send(message);
    return room.size;
  }
}
