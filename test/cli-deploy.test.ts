import type { ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, upgrade, WsClient, within } from "./helpers.js";
import { type Spawned, spawnProject } from "./processes.js";
import { makeCertificate, type TestCertificate } from "./tls.js";

const SECRET = "0123456789abcdef".repeat(4); // what `openssl rand -hex 32` prints
const children: ChildProcess[] = [];
let dir: string;
let certificate: TestCertificate;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ws-channels-cli-"));
  writeFileSync(join(dir, "secret"), `${SECRET}\n`); // one trailing newline, removed by the server
  certificate = makeCertificate();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  certificate.remove();
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  return spawnProject(children, process.execPath, ["packages/server/dist/cli.js", "--port", "0", ...args], env);
}

/** The log so far, one parsed JSON object per line. */
function lines(output: string): Record<string, unknown>[] {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Waits for a log line whose msg matches `pattern`; returns the match. */
async function logged(server: Spawned, pattern: RegExp): Promise<RegExpExecArray> {
  await eventually(() => pattern.test(server.output()), `a log line matching ${pattern}`, 5000);
  return pattern.exec(server.output()) as RegExpExecArray;
}

async function exitOf(server: Spawned): Promise<[number | null, string]> {
  const [code] = (await within(once(server.child, "exit"), "the server to exit")) as [number | null];
  return [code, server.output()];
}

function token(sub: string, key = SECRET): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setExpirationTime("1h").sign(new TextEncoder().encode(key));
}

describe("the CLI, deployed", () => {
  it("JWT from a secret file, admin port, JSON logs: no token or message body in any line; refusals at warn", async () => {
    const server = cli(["--jwt-secret-file", join(dir, "secret"), "--admin-port", "0", "--log-format", "json"]);
    const [, wsPort] = await logged(server, /WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const [, adminPort] = await logged(server, /admin \(\/metrics, \/healthz, \/readyz\) listening on http:\/\/127\.0\.0\.1:(\d+)/);
    expect(server.output()).toContain("TCP broadcast port off");
    const good = await token("ann");
    const forged = await token("ann", "f".repeat(64));
    const ann = await WsClient.open(`ws://127.0.0.1:${wsPort}/?token=${good}`);
    ann.send({ join: "room" });
    ann.send({ say: "the-message-body", to: "room" });
    expect([await ann.next(), await ann.next()]).toEqual([{ joined: "room" }, { to: "room", say: "the-message-body", from: "ann" }]);
    expect(await upgrade(`ws://127.0.0.1:${wsPort}/?token=${forged}`)).toEqual({ status: 401, body: "Unauthorized\n" });
    expect((await upgrade(`ws://127.0.0.1:${wsPort}/`, { headers: { Authorization: `Bearer ${forged}` } })).status).toBe(401);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('ws_channels_refused_total{reason="token"} 2');
    await logged(server, /"reason":"token"[\s\S]*"reason":"token"/);
    const exited = once(server.child, "exit");
    server.child.kill("SIGTERM");
    expect(await ann.closedBy()).toEqual({ code: 1001, reason: "server shutting down" });
    await within(exited, "the server to exit");
    const log = lines(server.output());
    for (const line of log) expect(line).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
    const warnings = log.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(2);
    for (const warning of warnings) expect(warning).toMatchObject({ msg: "refused", reason: "token", address: "127.0.0.1" });
    expect(log.map((line) => line.msg)).toContain("SIGTERM, closing connections");
    for (const secret of [good, forged, good.split(".")[2]!, forged.split(".")[2]!, "the-message-body", "token=", SECRET]) {
      expect(server.output()).not.toContain(secret);
    }
  });

  it("WS_CHANNELS_JWT_SECRET works alone; with a key file too, or too short, it exits 1 with the reason", async () => {
    const server = cli(["--log-format", "json", "--tcp-port", "0"], { WS_CHANNELS_JWT_SECRET: SECRET });
    const [, wsPort] = await logged(server, /WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    await logged(server, /TCP broadcast listening on tcp:\/\/127\.0\.0\.1:\d+/); // given explicitly: on
    expect((await upgrade(`ws://127.0.0.1:${wsPort}/?token=${await token("ann")}`)).status).toBe(101);
    expect((await upgrade(`ws://127.0.0.1:${wsPort}/`)).status).toBe(401);
    const both = await exitOf(cli(["--jwt-secret-file", join(dir, "secret")], { WS_CHANNELS_JWT_SECRET: SECRET }));
    expect(both[0]).toBe(1);
    expect(both[1]).toMatch(/cannot start: give one JWT key, not --jwt-secret-file and WS_CHANNELS_JWT_SECRET/);
    const short = await exitOf(cli([], { WS_CHANNELS_JWT_SECRET: "short" }));
    expect(short[0]).toBe(1);
    expect(short[1]).toMatch(/cannot start: the JWT secret must be at least 32 bytes/);
  });

  it("the JWT claim flags and --max-targets: aud, iss, max age instead of exp, channels required", async () => {
    const server = cli([
      ...["--jwt-secret-file", join(dir, "secret"), "--jwt-audience", "chat", "--jwt-issuer", "https://auth.example"],
      ...["--jwt-max-age", "60", "--jwt-clock-tolerance", "0", "--jwt-require-channels", "--max-targets", "1"],
    ]);
    const [, wsPort] = await logged(server, /WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const claims = { aud: "chat", iss: "https://auth.example", sub: "ann", iat: Math.floor(Date.now() / 1000) };
    const sign = (payload: object): Promise<string> =>
      new SignJWT({ ...payload }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
    const status = async (payload: object): Promise<number> =>
      (await upgrade(`ws://127.0.0.1:${wsPort}/?token=${await sign(payload)}`)).status;
    expect(await status({ ...claims, aud: "other" })).toBe(401);
    expect(await status({ ...claims, iss: undefined })).toBe(401);
    expect(await status({ ...claims, iat: claims.iat - 61 })).toBe(401);
    const ann = await WsClient.open(`ws://127.0.0.1:${wsPort}/?token=${await sign({ ...claims, channels: ["lobby"] })}`);
    const bob = await WsClient.open(`ws://127.0.0.1:${wsPort}/?token=${await sign({ ...claims, sub: "bob" })}`); // no exp: max age
    bob.send({ join: "lobby" });
    expect(await bob.next()).toEqual({ error: "forbidden", join: "lobby" }); // no channels claim: none
    ann.send({ join: "lobby" });
    ann.send({ targets: ["bob", "ann"], payload: 1 });
    ann.send({ targets: ["bob"], payload: 2 });
    expect([await ann.next(), await ann.next(), await bob.next()]).toEqual([
      { joined: "lobby" },
      { error: "too many targets" },
      { from: "ann", payload: 2 },
    ]);
    await Promise.all([ann.close(), bob.close()]);
    const keyless = await exitOf(cli(["--jwt-audience", "chat"]));
    expect(keyless).toEqual([1, expect.stringMatching(/cannot start: --jwt-audience, .* need a JWT key/)]);
  });

  it("an RSA public key under 2048 bits exits 1 with the reason, before listening", async () => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" });
    writeFileSync(join(dir, "weak.pem"), weak);
    const [code, output] = await exitOf(cli(["--jwt-public-key-file", join(dir, "weak.pem")]));
    expect(code).toBe(1);
    expect(output).toMatch(/cannot start: --jwt-public-key-file .*weak\.pem: the JWT RSA public key must be at least 2048 bits .*got 1024/);
    expect(output).not.toContain("listening");
  });

  it("a missing or bad key file exits 1 naming the flag", async () => {
    const missing = await exitOf(cli(["--jwt-public-key-file", join(dir, "nope.pem")]));
    expect(missing).toEqual([1, expect.stringMatching(/cannot start: --jwt-public-key-file .*nope\.pem: ENOENT/)]);
    const privateKey = await exitOf(cli(["--jwt-public-key-file", certificate.keyFile]));
    expect(privateKey).toEqual([
      1,
      expect.stringMatching(/cannot start: --jwt-public-key-file .*: expected a public key, got a private key/),
    ]);
  });

  it("TLS: serves wss:// with --tls-cert and --tls-key; a missing, bad or lone file exits 1 before listening", async () => {
    const server = cli(["--tcp-port", "0", "--tls-cert", certificate.certFile, "--tls-key", certificate.keyFile]);
    const [, wsPort] = await logged(server, /WebSocket listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    const client = await WsClient.open(`wss://127.0.0.1:${wsPort}/`, { ca: certificate.cert });
    client.send({ join: "secure" });
    expect(await client.next()).toEqual({ joined: "secure" });
    await client.close();
    for (const [args, reason] of [
      [["--tls-cert", join(dir, "missing.pem"), "--tls-key", certificate.keyFile], /cannot start: --tls-cert .*missing\.pem: ENOENT/],
      [["--tls-cert", certificate.keyFile, "--tls-key", certificate.keyFile], /cannot start: tls.cert: .*no start line/],
      [["--tls-cert", certificate.certFile], /cannot start: --tls-cert and --tls-key go together/],
    ] as const) {
      const [code, output] = await exitOf(cli(["--tcp-port", "0", ...args]));
      expect(code).toBe(1);
      expect(output).toMatch(reason);
      expect(output).not.toContain("listening");
    }
  });

  it("--log-format text prints one readable line per event; a bad --allowed-origins or --log-level exits 1", async () => {
    const server = cli(["--tcp-port", "0", "--log-format", "text", "--allowed-origins", "https://app.example"]);
    const [, wsPort] = await logged(server, /^\d\d:\d\d:\d\d\.\d{3} INFO WebSocket listening on ws:\/\/127\.0\.0\.1:(\d+)$/m);
    expect((await upgrade(`ws://127.0.0.1:${wsPort}/`, { origin: "https://evil.example" })).status).toBe(403);
    await logged(
      server,
      /^\d\d:\d\d:\d\d\.\d{3} WARN refused reason=origin address=127\.0\.0\.1 detail=origin https:\/\/evil\.example not allowed$/m,
    );
    for (const args of [
      ["--allowed-origins", "app.example"],
      ["--log-level", "loud"],
      ["--ping-interval", "0"],
    ]) {
      const [code, output] = await exitOf(cli(args));
      expect(code).toBe(1);
      expect(output).toMatch(new RegExp(`option '${args[0]} <\\w+>' argument '${args[1]}' is invalid`));
    }
  });
});
