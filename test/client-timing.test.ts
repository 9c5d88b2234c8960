import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Client, type StateEvent } from "ws-channels/client";

/*
 * The client's clock-driven behaviour (backoff, liveness, offline bounds) under vitest's fake
 * timers, over a scripted WebSocket: the test plays the server's side frame by frame, so that
 * every delay is exact. What a real server does is in client.test.ts.
 */

/** A WHATWG-shaped WebSocket the test opens, feeds and closes by hand. */
class ScriptedSocket {
  static made: ScriptedSocket[] = [];
  readonly url: string;
  readyState = 0;
  readonly sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  closedWith: [number | undefined, string | undefined] | undefined;

  constructor(url: string) {
    this.url = url;
    ScriptedSocket.made.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const last = (): ScriptedSocket => ScriptedSocket.made.at(-1) as ScriptedSocket;
let client: Client | undefined;
let states: StateEvent[];

function connect(options: ConstructorParameters<typeof Client>[1] = {}): Client {
  client = new Client("ws://server.test/", { WebSocket: ScriptedSocket, ...options });
  states = [];
  client.on("state", (event) => states.push(event));
  return client;
}

/** Lets the token read (a promise) settle and the socket be made. */
const settle = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

beforeEach(() => {
  vi.useFakeTimers();
  ScriptedSocket.made = [];
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("reconnecting", () => {
  it("backs off x2 from at most 0.5 s to at most 10 s, with full jitter", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    connect();
    await settle();
    const ceilings = [500, 1000, 2000, 4000, 8000, 10_000, 10_000];
    for (const ceiling of ceilings) {
      const before = ScriptedSocket.made.length;
      last().drop(1006);
      const { delay } = states.at(-1) as StateEvent;
      expect(delay).toBe(Math.floor(0.999 * ceiling));
      await vi.advanceTimersByTimeAsync((delay as number) - 1);
      expect(ScriptedSocket.made.length).toBe(before); // not a moment early
      await vi.advanceTimersByTimeAsync(1);
      expect(ScriptedSocket.made.length).toBe(before + 1);
    }
    expect(states.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(states.every((s) => s.state === "reconnecting" && s.code === 1006)).toBe(true);
  });

  it("draws each delay uniformly below its ceiling (full jitter)", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    connect();
    await settle();
    last().drop(1006);
    expect(states.at(-1)?.delay).toBe(0);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    await settle();
    last().drop(1006);
    expect(states.at(-1)).toMatchObject({ attempt: 2, delay: 500 });
  });

  it("resets the attempt count on the server's first reply, not on open", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    connect();
    await settle();
    last().open(); // accepted, then closed without a word: still failing
    last().drop(1008, "id in use");
    await vi.advanceTimersByTimeAsync(250);
    last().open();
    last().drop(1008, "id in use");
    expect(states.filter((s) => s.state === "reconnecting").map((s) => s.attempt)).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(500);
    last().open();
    last().receive({ pong: 1 });
    last().drop(1006);
    expect(states.at(-1)).toMatchObject({ state: "reconnecting", attempt: 1, delay: 250 });
  });

  it.each([
    [1008, "too many connections"],
    [3000, "invalid payload"],
    [3000, "cannot send to channel"],
    [4000, "disconnected"],
  ])("stops for good on close %i %s and says why", async (code, reason) => {
    connect();
    await settle();
    last().open();
    last().drop(code, reason);
    expect(states.at(-1)).toEqual({ state: "closed", attempt: 0, code, reason });
    expect(client?.state).toBe("closed");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ScriptedSocket.made.length).toBe(1);
  });

  it("retries every other close: 1001, 1006, 1011, 1008 id in use, rate limit", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    connect();
    for (const [code, reason] of [
      [1001, "server shutting down"],
      [1006, ""],
      [1011, "internal error"],
      [1008, "id in use"],
      [1008, "rate limit"],
    ] as const) {
      await settle();
      last().drop(code, reason);
      expect(client?.state).toBe("reconnecting");
    }
    await settle();
    expect(ScriptedSocket.made.length).toBe(6);
  });

  it("reconnects at once with a new token after 1008 token expired, and calls the token function before every attempt", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    let calls = 0;
    connect({ id: "ann", token: () => `t${++calls}` });
    await settle();
    expect(last().url).toBe("ws://server.test/?id=ann&token=t1");
    last().drop(1006); // a refused handshake (401) looks like this to a browser
    await vi.advanceTimersByTimeAsync(250);
    expect(last().url).toBe("ws://server.test/?id=ann&token=t2");
    last().open();
    last().receive({ pong: 1 });
    last().drop(1008, "token expired");
    expect(states.at(-1)).toMatchObject({ state: "reconnecting", attempt: 1, delay: 0, reason: "token expired" });
    await settle();
    expect(last().url).toBe("ws://server.test/?id=ann&token=t3");
    expect(calls).toBe(3);
  });

  it("tries again at once on the browser's online event and when a hidden tab becomes visible", async () => {
    const page = new EventTarget();
    const document = Object.assign(new EventTarget(), { visibilityState: "hidden" });
    vi.stubGlobal("addEventListener", page.addEventListener.bind(page));
    vi.stubGlobal("removeEventListener", page.removeEventListener.bind(page));
    vi.stubGlobal("document", document);
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    connect();
    await settle();
    for (let i = 0; i < 4; i++) {
      last().drop(1006);
      await vi.advanceTimersByTimeAsync(states.at(-1)?.delay as number);
    }
    last().drop(1006); // the next try is 7.99 s away
    page.dispatchEvent(new Event("online"));
    await settle();
    expect(ScriptedSocket.made.length).toBe(6);
    last().drop(1006);
    document.dispatchEvent(new Event("visibilitychange")); // still hidden: waits
    await settle();
    expect(ScriptedSocket.made.length).toBe(6);
    document.visibilityState = "visible";
    document.dispatchEvent(new Event("visibilitychange"));
    await settle();
    expect(ScriptedSocket.made.length).toBe(7);
  });
});

describe("liveness", () => {
  it("pings after 5 s of quiet; a frame in time keeps the connection", async () => {
    connect();
    await settle();
    last().open();
    await vi.advanceTimersByTimeAsync(4999);
    expect(last().sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(last().sent).toEqual([{ ping: 1 }]);
    await vi.advanceTimersByTimeAsync(4000);
    last().receive({ pong: 1 });
    await vi.advanceTimersByTimeAsync(9000);
    expect(client?.state).toBe("open");
    expect(last().sent).toEqual([{ ping: 1 }, { ping: 2 }]);
  });

  it("no frame within the timeout (default 10 s): closes the socket and reconnects", async () => {
    connect();
    await settle();
    const socket = last();
    socket.open();
    await vi.advanceTimersByTimeAsync(9999);
    expect(client?.state).toBe("open");
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.closedWith).toEqual([4000, "no frame within 10000 ms"]);
    expect(states.at(-1)).toMatchObject({ state: "reconnecting", attempt: 1, code: 4000, reason: "no frame within 10000 ms" });
  });

  it("a handshake that hangs counts as dead too, after the timeout", async () => {
    connect({ timeout: 3000 });
    await settle();
    await vi.advanceTimersByTimeAsync(3000);
    expect(states.at(-1)).toMatchObject({ state: "reconnecting", code: 4000 });
  });
});

describe("offline sends", () => {
  it("wait for a connection, then go out after the rejoins, in order", async () => {
    const c = connect();
    await settle();
    const room = c.join("lobby");
    const said = [room.say("a"), room.say("b")];
    last().open();
    await Promise.all(said);
    expect(last().sent).toEqual([
      { join: "lobby", req: 1 },
      { say: "a", to: "lobby" },
      { say: "b", to: "lobby" },
    ]);
  });

  it("are bounded (maxQueued, default 100): past it, the promise rejects at once", async () => {
    const c = connect();
    await settle();
    const room = c.join("lobby");
    const queued = Array.from({ length: 100 }, (_, i) => room.say(i));
    await expect(room.say("one too many")).rejects.toThrow(/offline queue full: 100 messages/);
    await expect(c.send(["bob"], "too")).rejects.toThrow(/offline queue full/);
    last().open();
    await Promise.all(queued);
    expect(last().sent.length).toBe(101);
  });

  it("are time-limited (queueTimeout, default 10 s): the promise rejects", async () => {
    const c = connect({ timeout: 60_000 }); // a handshake that hangs 10 s (the default timeout) would be retried
    const said = c.join("lobby").say("late");
    const result = expect(said).rejects.toThrow(/no connection within 10000 ms/);
    await vi.advanceTimersByTimeAsync(10_000);
    await result;
    last().open();
    expect(last().sent).toEqual([{ join: "lobby", req: 1 }]);
  });

  it("reject when the client closes", async () => {
    const c = connect();
    const said = c.join("lobby").say("never");
    c.close();
    await expect(said).rejects.toThrow(/closed/);
  });
});

describe("a room's live position (scripted frames)", () => {
  it("drops an offset at or below the last; a gap or another epoch rejoins with recover", async () => {
    const c = connect();
    await settle();
    const room = c.join("ch");
    const offsets: (number | undefined)[] = [];
    room.on("message", ({ offset }) => offsets.push(offset));
    const socket = last();
    socket.open();
    socket.receive({ joined: "ch", epoch: "e1", offset: 4, req: 1 });
    const say = (offset: number, epoch = "e1"): void => socket.receive({ to: "ch", say: offset, offset, epoch });
    say(5);
    say(5); // again: dropped
    say(4); // older: dropped
    say(6);
    say(8); // a hole: 7 is missing
    expect(offsets).toEqual([5, 6]);
    expect(socket.sent.at(-1)).toEqual({ join: "ch", recover: { offset: 6, epoch: "e1" }, req: 2 });
    say(9); // before the recovery's reply: in its missed, or before the join
    socket.receive({
      joined: "ch",
      recovered: true,
      epoch: "e1",
      offset: 9,
      missed: [7, 8, 9].map((n) => ({ say: n, offset: n })),
      req: 2,
    });
    say(10);
    expect(offsets).toEqual([5, 6, 7, 8, 9, 10]);
    say(1, "e2"); // offsets started again
    expect(socket.sent.at(-1)).toEqual({ join: "ch", recover: { offset: 10, epoch: "e1" }, req: 3 });
  });

  it("presence diffs before the snapshot wait for it; a rejoin's snapshot fires only real changes", async () => {
    const c = connect();
    await settle();
    const room = c.join("ch", { presence: true });
    const changes: unknown[] = [];
    room.on("presence", (change) => changes.push(change));
    let socket = last();
    socket.open();
    const ann = { ref: "a", id: "ann" };
    const bob = { ref: "b", id: "bob" };
    const cy = { ref: "c", id: null };
    socket.receive({ presence: "ch", joins: [bob], leaves: [] }); // early: waits for the snapshot
    expect(changes).toEqual([]);
    socket.receive({ joined: "ch", ref: "a", presence: [ann], req: 1 });
    expect(changes).toEqual([{ joins: [ann, bob], leaves: [] }]);
    socket.drop(1006);
    await vi.advanceTimersByTimeAsync(500);
    socket = last();
    socket.open();
    expect(socket.sent).toEqual([{ join: "ch", presence: true, req: 2 }]);
    const ann2 = { ref: "a2", id: "ann" };
    socket.receive({ joined: "ch", ref: "a2", presence: [bob, cy, ann2], req: 2 });
    expect(changes.at(-1)).toEqual({ joins: [cy, ann2], leaves: [ann] }); // bob stayed: not told
    expect([...room.members()].map(([id, refs]) => [id, [...refs.keys()]])).toEqual([
      ["bob", ["b"]],
      ["", ["c"]],
      ["ann", ["a2"]],
    ]);
    expect(Object.getPrototypeOf(room.members())).toBe(Map.prototype);
  });
});

describe("tokens", () => {
  /** A JWT-shaped token with `exp` (the client reads exp only; verifying is the server's job). */
  const jwt = (exp: number, n: number): string => `e30.${Buffer.from(JSON.stringify({ sub: "ann", exp, n })).toString("base64url")}.sig`;

  it("a token function is asked again 60 s before expiry and sent as a refresh; refreshed reschedules", async () => {
    vi.setSystemTime(1_000_000_000_000);
    const now = (): number => Math.floor(Date.now() / 1000);
    const tokens: string[] = [];
    // liveness off for the test's span: only the refresh timer runs
    connect({ token: () => tokens[tokens.push(jwt(now() + 300, tokens.length)) - 1] as string, pingAfter: 1e9, timeout: 1e9 });
    await settle();
    const socket = last();
    socket.open();
    await vi.advanceTimersByTimeAsync(239_999);
    expect(socket.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.sent).toEqual([{ refresh: tokens[1] }]);
    socket.receive({ refreshed: now() + 300 });
    await vi.advanceTimersByTimeAsync(240_000);
    expect(socket.sent).toEqual([{ refresh: tokens[1] }, { refresh: tokens[2] }]);
  });

  it("a string token is never refreshed", async () => {
    vi.setSystemTime(1_000_000_000_000);
    connect({ token: jwt(1_000_000_000 + 300, 0), pingAfter: 1e9, timeout: 1e9 });
    await settle();
    last().open();
    await vi.advanceTimersByTimeAsync(400_000);
    expect(last().sent).toEqual([]);
  });
});

describe("the client's module runs in browsers", () => {
  it("imports only its own modules, by relative .js paths (no bare specifier, no node: module)", async () => {
    const { readdir, readFile } = await import("node:fs/promises");
    const dir = new URL("../packages/ws-channels/src/client/", import.meta.url);
    const files = [new URL("../client.ts", dir), ...(await readdir(dir)).map((name) => new URL(name, dir))];
    let count = 0;
    for (const file of files) {
      const text = await readFile(file, "utf8");
      const specifiers = [...text.matchAll(/\bfrom\s+"([^"]+)"|import\(\s*"([^"]+)"/g)].map((m) => m[1] ?? m[2]);
      count += specifiers.length;
      for (const specifier of specifiers) expect(specifier, String(file)).toMatch(/^\.\.?\/[\w/.-]+\.js$/);
    }
    expect(count).toBeGreaterThan(10);
  });
});
