export { ClusterBroker, type ClusterBrokerOptions } from "./brokers/cluster.js";
export { type ClusterPrimary, type ClusterPrimaryStats, type SetupPrimaryOptions, setupPrimary } from "./brokers/cluster-primary.js";
export { fromPrimary, fromWorkers, type Handlers, type Tagged } from "./brokers/cluster-protocol.js";
export { WorkerBacklog, type WorkerBacklogOptions } from "./brokers/worker-backlog.js";
