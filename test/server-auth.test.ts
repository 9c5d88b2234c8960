import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { exportPKCS8, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  jwtAuthenticator,
  publicKey,
  type RunningServer,
  type ServerOptions,
  secretKey,
  startServer,
} from "../packages/server/src/server.js";
import { eventually, upgrade, WsClient } from "./helpers.js";

const SECRET = "a".repeat(64);
const secret = new TextEncoder().encode(SECRET);

let server: RunningServer | undefined;
const clients: WsClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function start(options: ServerOptions): Promise<RunningServer> {
  server = await startServer({ port: 0, ...options });
  return server;
}

function address(query = ""): string {
  return `ws://127.0.0.1:${server!.ws.port}/${query}`;
}

async function client(query = "", options = {}): Promise<WsClient> {
  const c = await WsClient.open(address(query), options);
  clients.push(c);
  return c;
}

/** A token for `sub` with `claims`, signed with `key` and `alg`; it expires in an hour unless `exp` says. */
function token(sub: string, claims: JWTPayload = {}, key: Parameters<SignJWT["sign"]>[0] = secret, alg = "HS256"): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg })
    .setSubject(sub)
    .setExpirationTime(claims.exp ?? "1h")
    .sign(key);
}

describe("JWT connection tokens (HS256 from a secret)", () => {
  it("a valid token in the query or a Bearer header opens the connection, known by its sub", async () => {
    await start({ authenticate: jwtAuthenticator(secretKey(SECRET)) });
    const byQuery = await client(`?token=${await token("ann")}`);
    const byHeader = await client("", { headers: { Authorization: `Bearer ${await token("bob")}` } });
    const sender = await client(`?token=${await token("cid")}`);
    sender.send({ targets: ["ann", "bob"], payload: "hi" });
    const hi = { from: "cid", payload: "hi" }; // from: the sender's verified sub
    expect([await byQuery.next(), await byHeader.next()]).toEqual([hi, hi]);
  });

  it("no token, a bad signature, a wrong algorithm, an expired token, no sub: 401 with one identical body", async () => {
    await start({ authenticate: jwtAuthenticator(secretKey(SECRET)) });
    const other = new TextEncoder().encode("b".repeat(64));
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(secret);
    const refusals = await Promise.all([
      upgrade(address()),
      upgrade(address("?token=")),
      upgrade(address("?token=not.a.jwt")),
      upgrade(address(`?token=${await token("ann", {}, other)}`)),
      upgrade(address(`?token=${await token("ann", {}, secret, "HS512")}`)),
      upgrade(address(`?token=${await token("ann", { exp: Math.floor(Date.now() / 1000) - 10 })}`)),
      upgrade(address(`?token=${noSub}`)),
      upgrade(address(), { headers: { Authorization: `Bearer ${await token("ann", {}, other)}` } }),
    ]);
    for (const refusal of refusals) expect(refusal).toEqual({ status: 401, body: "Unauthorized\n" });
    expect(server!.connections().connections).toBe(0);
  });

  it("closes the connection 1008 token expired when exp passes", async () => {
    await start({ jwt: { key: secretKey(SECRET), clockTolerance: 0 } }); // else it closes 5 s after exp
    const soon = await client(`?token=${await token("ann", { exp: Math.floor(Date.now() / 1000) + 1 })}`);
    const later = await client(`?token=${await token("bob")}`);
    soon.send({ join: "room" });
    expect(await soon.next()).toEqual({ joined: "room" });
    expect(await soon.closedBy()).toEqual({ code: 1008, reason: "token expired" });
    expect(later.ws.readyState).toBe(1);
    await eventually(() => server!.channels.count("room") === 0, "the expired connection to leave");
  });

  it("a channels claim limits joins, with * ending a prefix", async () => {
    await start({ authenticate: jwtAuthenticator(secretKey(SECRET)) });
    const c = await client(`?token=${await token("ann", { channels: ["lobby", "room:*"] })}`);
    for (const channel of ["lobby", "room:42", "room", "lobby2", "admin"]) c.send({ join: channel });
    expect([await c.next(), await c.next(), await c.next(), await c.next(), await c.next()]).toEqual([
      { joined: "lobby" },
      { joined: "room:42" },
      { error: "forbidden", join: "room" },
      { error: "forbidden", join: "lobby2" },
      { error: "forbidden", join: "admin" },
    ]);
    const bad = await upgrade(address(`?token=${await token("ann", { channels: "lobby" })}`));
    expect(bad.status).toBe(401); // a channels claim that is not an array of strings
  });

  it("one sub may hold several connections, and a targeted message reaches every one; ?id= is ignored", async () => {
    await start({ authenticate: jwtAuthenticator(secretKey(SECRET)) });
    const ann = await token("ann");
    const tabs = [
      await client(`?token=${ann}`),
      await client(`?token=${ann}`),
      await client("", { headers: { Authorization: `Bearer ${ann}` } }),
    ];
    const bob = await client(`?id=ann&token=${await token("bob")}`);
    bob.send({ targets: ["ann"], payload: "to every tab" });
    for (const tab of tabs) expect(await tab.next()).toEqual({ from: "bob", payload: "to every tab" }); // the sub, not ?id=ann
    tabs[0]!.send({ targets: ["bob", "nobody"], payload: "reply" });
    expect(await bob.next()).toEqual({ from: "ann", payload: "reply" });
    expect(await tabs[0]!.next()).toEqual({ error: "unknown targets", targets: ["nobody"] });
    expect(bob.received).toEqual([{ from: "ann", payload: "reply" }]); // its ?id=ann gave it none of ann's messages
    bob.send({ join: "room" });
    expect(await bob.next()).toEqual({ joined: "room" });
    bob.send({ say: "hi", to: "room" });
    expect(await bob.next()).toEqual({ to: "room", say: "hi", from: "bob" });
  });

  it("the TCP port is off with authentication unless given explicitly", async () => {
    const off = await start({ authenticate: jwtAuthenticator(secretKey(SECRET)) });
    expect(off.tcp).toBeUndefined();
    await off.close();
    const on = await start({ authenticate: jwtAuthenticator(secretKey(SECRET)), tcpPort: 0 });
    expect(on.tcp?.port).toBeGreaterThan(0);
  });

  it("a secret shorter than 32 bytes is refused (RFC 7518 section 3.2)", () => {
    expect(() => secretKey("short")).toThrow(RangeError);
    expect(() => jwtAuthenticator({ algorithm: "HS256", key: new Uint8Array(31) })).toThrow(/at least 32 bytes .*got 31/);
  });
});

/** A token of exactly `claims` (no exp unless given), signed with the secret. */
function signed(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(secret);
}

describe("JWT claims checked in full", () => {
  const now = (): number => Math.floor(Date.now() / 1000);
  const status = async (jwt: string): Promise<number> => (await upgrade(address(`?token=${jwt}`))).status;

  it("with an audience and an issuer, a token without the matching aud or iss gets 401", async () => {
    await start({ jwt: { key: secretKey(SECRET), audience: "chat", issuer: "https://auth.example" } });
    const good = { aud: "chat", iss: "https://auth.example" };
    expect(await status(await token("ann", good))).toBe(101);
    expect(await status(await token("ann", { aud: ["other", "chat"], iss: good.iss }))).toBe(101);
    for (const bad of [{ iss: good.iss }, { aud: "other", iss: good.iss }, { aud: "chat" }, { aud: "chat", iss: "https://evil.example" }]) {
      expect(await status(await token("ann", bad)), JSON.stringify(bad)).toBe(401);
    }
  });

  it("a token without exp gets 401 (RFC 8725 section 3.10), unless maxAge bounds its age from iat", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    expect(await status(await signed({ sub: "ann", iat: now() }))).toBe(401);
    await server!.close();
    await start({ jwt: { key: secretKey(SECRET), maxAge: 60 } });
    expect(await status(await signed({ sub: "ann", iat: now() }))).toBe(101);
    expect(await status(await signed({ sub: "ann", iat: now() - 120 }))).toBe(401); // too old
    expect(await status(await signed({ sub: "ann" }))).toBe(401); // no iat to bound
    expect(await status(await signed({ sub: "ann", iat: now(), exp: now() - 60 }))).toBe(401); // exp still holds
  });

  it("with maxAge, the connection closes 1008 token expired once the token is that old", async () => {
    await start({ jwt: { key: secretKey(SECRET), maxAge: 1, clockTolerance: 0 } });
    const c = await client(`?token=${await signed({ sub: "ann", iat: now() })}`);
    expect(await c.closedBy()).toEqual({ code: 1008, reason: "token expired" });
  });

  it("the clock tolerance (default 5 s) applies to exp and nbf", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    expect(await status(await token("ann", { exp: now() - 2 }))).toBe(101);
    expect(await status(await token("ann", { nbf: now() + 2 }))).toBe(101);
    expect(await status(await token("ann", { nbf: now() + 30 }))).toBe(401);
    await server!.close();
    await start({ jwt: { key: secretKey(SECRET), clockTolerance: 0 } });
    expect(await status(await token("ann", { exp: now() - 2 }))).toBe(401);
    expect(await status(await token("ann", { nbf: now() + 2 }))).toBe(401);
    expect(() => jwtAuthenticator(secretKey(SECRET), { clockTolerance: -1 })).toThrow(RangeError);
  });

  it("a token without a channels claim may join every channel, and none with requireChannels", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    const open = await client(`?token=${await token("ann")}`);
    open.send({ join: "anything" });
    expect(await open.next()).toEqual({ joined: "anything" });
    await server!.close();
    await start({ jwt: { key: secretKey(SECRET), requireChannels: true } });
    const [none, listed] = [
      await client(`?token=${await token("ann")}`),
      await client(`?token=${await token("bob", { channels: ["lobby"] })}`),
    ];
    none.send({ join: "anything" });
    listed.send({ join: "lobby" });
    expect([await none.next(), await listed.next()]).toEqual([{ error: "forbidden", join: "anything" }, { joined: "lobby" }]);
  });

  it("a sub that is not well-formed UTF-16 (a lone surrogate) gets 401", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    expect(await status(await token("ann\uD800"))).toBe(401);
    expect(await status(await token("ann\uD83D\uDE00"))).toBe(101); // a pair is fine
  });

  it("jwt and authenticate together are refused", async () => {
    await expect(startServer({ port: 0, jwt: { key: secretKey(SECRET) }, authenticate: () => ({ id: "x" }) })).rejects.toThrow(TypeError);
  });
});

describe("JWT connection tokens (RS256, ES256 from a PEM public key)", () => {
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let ec: Awaited<ReturnType<typeof generateKeyPair>>;
  beforeAll(async () => {
    [rsa, ec] = await Promise.all([generateKeyPair("RS256", { extractable: true }), generateKeyPair("ES256")]);
  });

  it("RS256: accepts its own tokens; refuses another algorithm, an HS256 token keyed with the public PEM, an ES256 token", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    expect(publicKey(pem).algorithm).toBe("RS256");
    await start({ authenticate: jwtAuthenticator(publicKey(pem)) });
    const c = await client(`?token=${await token("ann", {}, rsa.privateKey, "RS256")}`);
    c.send({ join: "room" });
    expect(await c.next()).toEqual({ joined: "room" });
    for (const bad of [
      // the same RSA key, another algorithm: a Node KeyObject signs with any RSA algorithm
      await token("ann", {}, createPrivateKey(await exportPKCS8(rsa.privateKey)), "RS384"),
      await token("ann", {}, new TextEncoder().encode(pem), "HS256"), // the algorithm-confusion attack
      await token("ann", {}, ec.privateKey, "ES256"),
    ]) {
      expect(await upgrade(address(`?token=${bad}`))).toEqual({ status: 401, body: "Unauthorized\n" });
    }
  });

  it("an RSA key under 2048 bits is refused at once, naming the key (RFC 7518 section 3.3)", async () => {
    const { publicKey: weak } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const pem = weak.export({ type: "spki", format: "pem" }).toString();
    expect(() => publicKey(pem)).toThrow(/RSA public key must be at least 2048 bits.*got 1024/);
    expect(() => jwtAuthenticator({ algorithm: "RS256", key: weak })).toThrow(RangeError);
    await expect(startServer({ port: 0, jwt: { key: { algorithm: "RS256", key: weak } } })).rejects.toThrow(RangeError);
  });

  it("ES256: accepts its own tokens, refuses RS256 ones", async () => {
    const pem = await exportSPKI(ec.publicKey);
    expect(publicKey(pem).algorithm).toBe("ES256");
    await start({ authenticate: jwtAuthenticator(publicKey(pem)) });
    expect((await upgrade(address(`?token=${await token("ann", {}, ec.privateKey, "ES256")}`))).status).toBe(101);
    expect((await upgrade(address(`?token=${await token("ann", {}, rsa.privateKey, "RS256")}`))).status).toBe(401);
  });
});

describe("the authenticate hook", () => {
  it("sync or async identities are accepted; undefined, false, a throw, a rejection or a bad shape: 401", async () => {
    const answers: Record<string, () => unknown> = {
      sync: () => ({ id: "s" }),
      async: async () => ({ id: "a", channels: ["x"] }),
      undefined: () => undefined,
      false: () => false,
      throws: () => {
        throw new Error("no");
      },
      rejects: () => Promise.reject(new Error("no")),
      shape: () => ({ id: 5 }),
      lone: () => ({ id: "x\uDC00" }), // not well-formed UTF-16: another id once encoded as UTF-8
    };
    await start({
      authenticate: (request) => answers[new URL(request.url ?? "/", "http://x").searchParams.get("as") ?? ""]?.() as never,
    });
    const statuses = await Promise.all(Object.keys(answers).map(async (as) => [as, (await upgrade(address(`?as=${as}`))).status]));
    expect(Object.fromEntries(statuses)).toEqual({
      sync: 101,
      async: 101,
      undefined: 401,
      false: 401,
      throws: 401,
      rejects: 401,
      shape: 401,
      lone: 401,
    });
  });
});

describe("origins", () => {
  it("an Origin not in the list gets 403; a listed one or none is let in", async () => {
    await start({ tcpPort: 0, allowedOrigins: ["https://app.example", "http://localhost:8080"] });
    expect(await upgrade(address(), { origin: "https://evil.example" })).toEqual({ status: 403, body: "Forbidden\n" });
    expect((await upgrade(address(), { origin: "https://app.example" })).status).toBe(101);
    expect((await upgrade(address(), { origin: "http://localhost:8080" })).status).toBe(101);
    expect((await upgrade(address())).status).toBe(101);
  });

  it("by default every origin is let in; a list entry that is not an origin is refused", async () => {
    await start({ tcpPort: 0 });
    expect((await upgrade(address(), { origin: "https://anywhere.example" })).status).toBe(101);
    await expect(startServer({ port: 0, tcpPort: 0, allowedOrigins: ["https://app.example/path"] })).rejects.toThrow(TypeError);
  });
});

describe('{"refresh": TOKEN}: a new token in place', () => {
  const now = (): number => Math.floor(Date.now() / 1000);

  it("moves the expiry to the new exp and answers it; a connection left on the old token closes at the old exp", async () => {
    await start({ jwt: { key: secretKey(SECRET), clockTolerance: 0 } });
    const exp = now() + 2; // 1 to 2 s away: time enough for the refresh to arrive first
    const [refreshing, control] = [
      await client(`?token=${await token("ann", { exp })}`),
      await client(`?token=${await token("ann", { exp })}`),
    ];
    refreshing.send({ refresh: await token("ann", { exp: exp + 1 }), req: "r1" });
    expect(await refreshing.next()).toEqual({ refreshed: exp + 1, req: "r1" });
    expect(await control.closedBy()).toEqual({ code: 1008, reason: "token expired" });
    refreshing.send({ join: "room" }); // past the old exp, still open
    expect(await refreshing.next()).toEqual({ joined: "room" });
    expect(await refreshing.closedBy()).toEqual({ code: 1008, reason: "token expired" }); // at the new exp
  });

  it("with maxAge, the new expiry is the new token's iat + maxAge", async () => {
    await start({ jwt: { key: secretKey(SECRET), maxAge: 60, clockTolerance: 0 } });
    const c = await client(`?token=${await signed({ sub: "ann", iat: now() })}`);
    const iat = now();
    c.send({ refresh: await signed({ sub: "ann", iat }) });
    expect(await c.next()).toEqual({ refreshed: iat + 60 });
  });

  it("replaces the channels claim for later joins, and keeps the channels already joined", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    const c = await client(`?token=${await token("ann", { channels: ["a"] })}`);
    c.send({ join: "a" });
    c.send({ refresh: await token("ann", { channels: ["b"] }) });
    c.send({ join: "b" });
    c.send({ join: "c" });
    const replies = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(replies).toEqual([{ joined: "a" }, { refreshed: expect.any(Number) }, { joined: "b" }, { error: "forbidden", join: "c" }]);
    expect(server!.channels.count("a")).toBe(1);
    c.send({ refresh: await token("ann") }); // no claim: every channel
    c.send({ join: "c" });
    expect([await c.next(), await c.next()]).toEqual([{ refreshed: expect.any(Number) }, { joined: "c" }]);
  });

  it("a token of another sub closes the connection 1008 token subject changed", async () => {
    await start({ jwt: { key: secretKey(SECRET) } });
    const c = await client(`?token=${await token("ann")}`);
    c.send({ refresh: await token("bob"), req: 1 });
    expect(await c.closedBy()).toEqual({ code: 1008, reason: "token subject changed" });
    expect(c.received).toEqual([]);
  });

  it("an invalid or expired token is answered token invalid, and the old token holds until its exp", async () => {
    await start({ jwt: { key: secretKey(SECRET), clockTolerance: 0 } });
    const c = await client(`?token=${await token("ann", { exp: now() + 2 })}`);
    const bad = [
      "not.a.jwt",
      "",
      await token("ann", {}, new TextEncoder().encode("b".repeat(64))),
      await token("ann", {}, secret, "HS512"),
      await token("ann", { exp: now() - 10 }),
    ];
    bad.forEach((jwt, i) => {
      c.send({ refresh: jwt, req: i });
    });
    for (let i = 0; i < bad.length; i++) expect(await c.next()).toEqual({ error: "token invalid", req: i });
    c.send({ join: "room" });
    expect(await c.next()).toEqual({ joined: "room" });
    expect(await c.closedBy()).toEqual({ code: 1008, reason: "token expired" });
  });

  it("with an authenticate hook, asks it again with the token as a Bearer header, within the hook timeout", async () => {
    const seen: unknown[] = [];
    await start({
      hookTimeout: 200,
      authenticate: (request) => {
        const bearer = request.headers.authorization?.slice(7) ?? new URL(request.url ?? "/", "http://x").searchParams.get("token");
        seen.push({ method: request.method, url: request.url, address: request.socket.remoteAddress });
        if (bearer === "slow") return new Promise(() => undefined); // never answers
        return bearer?.startsWith("ann") ? { id: "ann", channels: [bearer], expiresAt: 4_102_444_800_500 } : false;
      },
    });
    const c = await client("?token=ann-1");
    c.send({ refresh: "ann-2", req: "a" });
    c.send({ refresh: "slow", req: "b" });
    c.send({ refresh: "eve", req: "c" });
    c.send({ join: "ann-2" });
    expect([await c.next(), await c.next(), await c.next(), await c.next()]).toEqual([
      { refreshed: 4_102_444_800, req: "a" },
      { error: "token invalid", req: "b" },
      { error: "token invalid", req: "c" },
      { joined: "ann-2" },
    ]);
    expect(seen[1]).toEqual({ method: "GET", url: "/", address: "127.0.0.1" });
  });
});
