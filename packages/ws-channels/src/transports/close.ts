import { EventEmitter } from "node:events";

interface Closable {
  once(event: "close", listener: () => void): unknown;
  off(event: "close", listener: () => void): unknown;
}

/**
 * Tells when a watched member emits `close`. A Node `EventEmitter` (a `ws` WebSocket, a
 * `net.Socket`) gets one listener shared by every member, which finds its member in `this`, so
 * watching it allocates nothing; another emitter (an object with `once` and `off`) gets a
 * listener of its own, kept until it is unwatched.
 */
export class CloseWatcher<Member extends object> {
  readonly #shared: (this: EventEmitter) => void;
  readonly #closed: (member: Member) => void;
  /** The listeners of emitters that are not Node EventEmitters, to remove them later. */
  readonly #others = new Map<Member, () => void>();

  /** @param closed called once when a watched member emits `close`. */
  constructor(closed: (member: Member) => void) {
    this.#closed = closed;
    this.#shared = function (this: EventEmitter): void {
      closed(this as unknown as Member);
    };
  }

  /** Starts watching `member`; one that emits nothing is never reported. */
  watch(member: Member): void {
    if (member instanceof EventEmitter) {
      member.on("close", this.#shared);
      return;
    }
    const emitter = member as Partial<Closable>;
    const { once, off } = emitter;
    if (typeof once !== "function" || typeof off !== "function") return;
    const listener = (): void => this.#closed(member);
    once.call(emitter, "close", listener);
    this.#others.set(member, () => off.call(emitter, "close", listener));
  }

  /** Stops watching `member`. */
  unwatch(member: Member): void {
    if (member instanceof EventEmitter) {
      member.off("close", this.#shared);
      return;
    }
    const off = this.#others.get(member);
    if (off === undefined) return;
    this.#others.delete(member);
    off();
  }
}
