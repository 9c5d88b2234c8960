import { AggregatorRegistry, type Registry } from "prom-client";
import { report } from "./primary.js";

/**
 * Makes a started server one of `runPrimary`'s workers as the primary sees it: call it in a
 * node:cluster worker once `startServer` has resolved. The server's metrics join the sum the
 * primary's admin listener serves, and the primary learns that this worker listens (it logs the
 * start, and `/readyz` waits for every worker).
 * @param server what `startServer` resolved to (only its `registry` is read).
 */
export function joinPrimary(server: { readonly registry: Registry }): void {
  new AggregatorRegistry(); // in a worker, making one is what answers the primary's requests
  AggregatorRegistry.setRegistries([server.registry]);
  report({ wsChannels: "listening" });
}
