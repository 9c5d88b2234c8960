import type { AddressInfo, Server } from "node:net";

/** Where a listener is bound. */
export interface Bound {
  host: string;
  port: number;
}

/**
 * Starts `server` listening on `host:port` (port 0 gives a free port).
 * @returns the bound address; rejects with the listen error (EADDRINUSE, say).
 */
export function listen(server: Server, host: string, port: number): Promise<Bound> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address: AddressInfo | string | null = server.address();
      resolve(address === null || typeof address === "string" ? { host, port } : { host: address.address, port: address.port });
    });
  });
}

/** `scheme://host:port`, with an IPv6 host in brackets. */
export function url(scheme: string, { host, port }: Bound): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
