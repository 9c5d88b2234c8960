import { type AddressInfo, isIPv6, type Server } from "node:net";

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

/**
 * Who a client is for the per-IP limits: an IPv4 address as it is; an IPv4-mapped IPv6 one
 * (`::ffff:1.2.3.4`, what a dual-stack listener reports) as that IPv4 address; any other IPv6
 * one as its /64 (`2001:db8:0:1::/64`), the smallest block a home or a host is given, so that one
 * client cannot take a fresh address per connection. Anything else is returned as it is.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  const bare = address.split("%")[0] as string; // a link-local address's zone
  if (!isIPv6(bare)) return address;
  const [head = "", tail] = bare.split("::");
  const groups = head === "" ? [] : head.split(":");
  if (tail !== undefined) {
    // an embedded IPv4 tail is two groups; only the first four groups are kept
    const right = tail === "" ? [] : tail.split(":");
    const width = right.reduce((sum, group) => sum + (group.includes(".") ? 2 : 1), 0);
    groups.push(...Array<string>(8 - groups.length - width).fill("0"));
  }
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(":")}::/64`;
}
