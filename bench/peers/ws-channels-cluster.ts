/* ws-channels on 2 node:cluster workers, broadcasts carried by ClusterBroker through the primary. */
import { ClusterBroker, setupPrimary } from "ws-channels/cluster";
import { runTwoNodes } from "./two-nodes.js";

runTwoNodes({
  primary: async () => {
    setupPrimary();
    return { extraPids: [], env: {} };
  },
  broker: () => new ClusterBroker(),
});
