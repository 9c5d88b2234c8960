import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../packages/server/src/server.js";
import { WsClient } from "./helpers.js";
import { makeCertificate, type TestCertificate } from "./tls.js";

let certificate: TestCertificate;
let server: RunningServer | undefined;
const clients: WsClient[] = [];
beforeAll(() => {
  certificate = makeCertificate();
});
afterAll(() => certificate.remove());
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

describe("TLS", () => {
  it("serves wss:// to a client that trusts the certificate; the protocol works as over ws://", async () => {
    server = await startServer({ port: 0, tcpPort: 0, tls: { cert: certificate.cert, key: certificate.key } });
    const url = `wss://127.0.0.1:${server.ws.port}/`;
    const [a, b] = [await WsClient.open(url, { ca: certificate.cert }), await WsClient.open(`${url}?id=b`, { ca: certificate.cert })];
    clients.push(a, b);
    a.send({ join: "room" });
    b.send({ join: "room" });
    expect([await a.next(), await b.next()]).toEqual([{ joined: "room" }, { joined: "room" }]);
    a.send({ say: "over TLS", to: "room" });
    expect(await b.next()).toEqual({ to: "room", say: "over TLS" });
  });

  it("a client that does not trust the certificate cannot connect; plain ws:// to the TLS port fails", async () => {
    server = await startServer({ port: 0, tcpPort: 0, tls: { cert: certificate.cert, key: certificate.key } });
    await expect(WsClient.open(`wss://127.0.0.1:${server.ws.port}/`)).rejects.toThrow();
    await expect(WsClient.open(`ws://127.0.0.1:${server.ws.port}/`)).rejects.toThrow();
  });

  it("a key that is not PEM or does not match the certificate: startServer rejects before listening", async () => {
    await expect(startServer({ port: 0, tcpPort: 0, tls: { cert: certificate.cert, key: "not a key" } })).rejects.toThrow(/^tls.key: /);
    const other = makeCertificate();
    try {
      await expect(startServer({ port: 0, tcpPort: 0, tls: { cert: certificate.cert, key: other.key } })).rejects.toThrow(
        /^tls.cert and tls.key: .*mismatch/,
      );
    } finally {
      other.remove();
    }
  });
});
