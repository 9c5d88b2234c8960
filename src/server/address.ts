import type { AddressInfo } from "node:net";

/** Where a listener is bound. */
export interface Bound {
  host: string;
  port: number;
}

/** The bound address of a listener, from what `server.address()` returned. */
export function bound(address: AddressInfo | string | null, requested: Bound): Bound {
  return address === null || typeof address === "string" ? requested : { host: address.address, port: address.port };
}

/** `scheme://host:port`, with an IPv6 host in brackets. */
export function url(scheme: string, { host, port }: Bound): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
